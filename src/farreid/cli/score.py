"""`farreid score`: the metrics of a challenge submission CSV against the labels, computed locally."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config


@app.command("score")
def score(
    submission: Path = typer.Option(
        ..., "--submission", "-s",
        help="Ranked-list CSV: the VReID-XFD form row_id,case,query_tracklet,ranked_gallery_tracklets (whole "
        "rankings), or the AG-VPReID form row_id,query_tracklet,gallery_tracklets (top-k lists; eval.junk=tracklet).",
    ),
    labels: Path = typer.Option(
        ..., "--labels", "-l",
        help="A labelled dataset folder (its layout: --dataset / data.dataset, cases: data.protocol) or a labels "
        "CSV with the header case,split,tracklet,pid,camid.",
    ),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Layout of a --labels folder (default: "
                                          "data.dataset)."),
    map_at: list[int] = typer.Option([], "--map-at", help="mAP@K cut-off, repeatable (default: eval.map_at; the "
                                     "AG-VPReID leaderboard uses 20)."),
    ap_interpolation: Optional[str] = typer.Option(
        None, "--ap-interpolation",
        help="none: AP as farreid eval reports it (default: eval.ap_interpolation); trapezoid: the VReID-XFD "
        "challenge scorer's trapezoid-rule AP, to compare with its leaderboard.",
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write metrics.json and summary.txt here."),
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Score a submission CSV per case and overall: mAP, CMC (R1-R20), mINP and mAP@K, with the definitions of
    farreid eval (junk rule: eval.junk; eval.junk=tracklet --ap-interpolation trapezoid reproduces the VReID-XFD
    challenge scorer)."""
    from farreid.eval.labels import load_labels
    from farreid.eval.protocols import TABLE_METRICS
    from farreid.eval.submission import score_submission, scored_result
    from farreid.utils.io import atomic_write_json, atomic_write_text
    from farreid.utils.log import setup_logging

    extra = [f"eval.ap_interpolation={ap_interpolation}"] if ap_interpolation is not None else []
    if map_at:
        extra.append(f"eval.map_at=[{','.join(str(k) for k in map_at)}]")
    cfg = build_config(config, [*(overrides or []), *extra])
    if dataset is not None:
        cfg.data.dataset = dataset
    setup_logging()
    truth = load_labels(labels, cfg.data)
    e = cfg.eval
    scores = score_submission(submission, truth, e)
    settings = {"junk": e.junk, "max_rank": e.max_rank, "map_at": list(e.map_at),
                "ap_interpolation": e.ap_interpolation, "scored": str(submission), "labels": str(labels)}
    result = scored_result(scores, truth, settings)
    table = result.table((*TABLE_METRICS, *(f"mAP@{k}" for k in e.map_at)))
    typer.echo(table)
    if out is not None:
        atomic_write_text(Path(out) / "summary.txt", table + "\n")
        atomic_write_json(Path(out) / "metrics.json", result.to_dict())
        typer.echo(f"results in {out}")
