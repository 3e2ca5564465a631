"""`farreid search`: top-k gallery tracklets for a query tracklet or saved query features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config


@app.command("search")
def search(
    gallery: Path = typer.Option(
        ..., "--gallery", "-g", help="Gallery feature-set folder (from farreid extract; single file or shards)."
    ),
    query: Path = typer.Option(
        ..., "--query", "-q",
        help="A query feature-set folder, or a tracklet folder / folder of tracklet folders to embed (inside a "
        "from-mot / folder layout, its pid and camera are read from the layout).",
    ),
    k: int = typer.Option(20, "-k", "--top", help="How many gallery tracklets to list per query."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint",
        help="Model that embeds query tracklets (default: the checkpoint recorded in the gallery).",
    ),
    camid: int = typer.Option(
        0, "--camid", help="Camera id of query tracklets outside a layout with metadata (for camera-keyed prompts)."
    ),
    platform: str = typer.Option(
        "ground", "--platform", help="Platform of query tracklets outside a layout with metadata: ground or aerial."
    ),
    keep_self: bool = typer.Option(
        False, "--keep-self", help="Keep a query's own tracklet in its ranking when it is in the gallery (left out by default)."
    ),
    rerank: bool = typer.Option(
        False, "--rerank", help="k-reciprocal re-ranking (loads the whole gallery); also on with eval.rerank.enabled."
    ),
    k1: Optional[int] = typer.Option(None, "--k1", help="Re-ranking k1 (default: eval.rerank.k1)."),
    k2: Optional[int] = typer.Option(None, "--k2", help="Re-ranking k2 (default: eval.rerank.k2)."),
    lambda_value: Optional[float] = typer.Option(
        None, "--lambda", help="Re-ranking weight of the original distance (default: eval.rerank.lambda_value)."
    ),
    rerank_max_gallery: int = typer.Option(
        50_000, "--rerank-max-gallery", help="Refuse re-ranking above this many gallery rows (memory)."
    ),
    backend: str = typer.Option("auto", "--backend", help="auto, torch (matmul) or faiss (exact inner product)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (search and query embedding)."),
    chunk_rows: int = typer.Option(65536, "--chunk-rows", help="Gallery rows read and scored at a time."),
    out: Optional[Path] = typer.Option(
        Path("search-results"), "--out", "-o", help="Folder for ranking.csv and the ranked pictures."
    ),
    pictures: int = typer.Option(8, "--pictures", help="Ranked pictures to draw (first queries; 0 = none)."),
    show: int = typer.Option(5, "--show", help="Queries whose ranked list is printed."),
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Rank a gallery for each query: top-k with scores, optional re-ranking, a CSV and ranked pictures.
    Exact search, streamed over the gallery's shards (never loaded whole unless re-ranking)."""
    from dataclasses import replace

    from farreid.config import check_option
    from farreid.inference.search import query_features, search_gallery
    from farreid.utils.device import resolve_device
    from farreid.utils.io import check_output
    from farreid.utils.log import setup_logging

    for key, value, name in (
        ("search -k", k, "-k"), ("search --chunk-rows", chunk_rows, "--chunk-rows"),
        ("search --rerank-max-gallery", rerank_max_gallery, "--rerank-max-gallery"),
        ("search --platform", platform, "--platform"), ("device", device, "--device"),
        ("eval.show_queries", pictures, "--pictures"), ("eval.show_queries", show, "--show"),
    ):
        check_option(key, value, name)
    given = {"k1": (k1, "--k1"), "k2": (k2, "--k2"), "lambda_value": (lambda_value, "--lambda")}
    settings = {key: check_option(f"eval.rerank.{key}", value, option)
                for key, (value, option) in given.items() if value is not None}
    configured = build_config(config, overrides).eval.rerank
    rerank_options = replace(configured, enabled=configured.enabled or rerank, **settings)
    if out is not None:
        check_output(out, "dir")
        check_output(out / "ranking.csv", "file")
        check_output(out / "pictures", "dir")
    setup_logging()
    queries = query_features(query, gallery, checkpoint, camid=camid, platform=platform, device=device)
    results = search_gallery(
        queries, gallery, k, backend=backend, device=resolve_device(device), chunk_rows=chunk_rows,
        rerank=rerank_options, rerank_max_gallery=rerank_max_gallery,
        keep_self=keep_self,
    )
    typer.echo(results.table(max_queries=show))
    if results.left_out:
        typer.echo(f"{results.left_out} of {len(results.hits)} queries are gallery tracklets: each one's own tracklet is "
                   "left out of its ranking (--keep-self keeps it)")
    if out is not None:
        results.write_csv(out / "ranking.csv")
        drawn = results.write_pictures(out / "pictures", max_queries=pictures)
        typer.echo(f"ranking of {len(results.hits)} queries in {out / 'ranking.csv'}; {len(drawn)} picture(s) in {out / 'pictures'}")
