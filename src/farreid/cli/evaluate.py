"""`farreid eval`: metrics, re-ranking, challenge CSV, ranked pictures and an HTML report, from saved features or
from a trained checkpoint (which is embedded on its dataset's test protocols first)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config
from farreid.errors import FarreidError
from farreid.utils.io import check_output


def _load(features: Optional[Path], query: Optional[Path], gallery: Optional[Path], name: str, only: list[str]):
    from farreid.eval import ProtocolData, load_feature_set, load_protocols

    if features is not None and (query is not None or gallery is not None):
        raise FarreidError("give either --features or --query-features with --gallery-features, not both")
    if features is not None:
        return load_protocols(features, only or None)
    if query is None or gallery is None:
        raise FarreidError("give --features DIR, or both --query-features DIR and --gallery-features DIR")
    return [ProtocolData(name, load_feature_set(query), load_feature_set(gallery))]


def _score(csv_path: Path, protocols, cfg) -> str:
    from farreid.eval.submission import score_submission, scored_result

    e = cfg.eval
    scores = score_submission(csv_path, protocols, e)
    settings = {"junk": e.junk, "ap_interpolation": e.ap_interpolation, "scored": str(csv_path)}
    return scored_result(scores, protocols, settings).table()


def _evaluate_checkpoint(checkpoint: Path, config: Optional[Path], overrides: Optional[list[str]], out: Optional[Path]):
    from farreid.config import load_config
    from farreid.inference.evaluate import default_eval_dir, evaluate_checkpoint
    from farreid.inference.loading import StoredCheckpoint, checkpoint_config
    from farreid.utils.log import setup_logging

    stored = StoredCheckpoint.read(checkpoint)  # the one read of the file
    cfg = load_config(config, overrides or [], base=checkpoint_config(stored))
    setup_logging()
    result = evaluate_checkpoint(stored, cfg, out)
    typer.echo(result.table())
    typer.echo(f"results in {out or default_eval_dir(cfg, checkpoint)}")


@app.command("eval")
def evaluate(
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint",
        help="Evaluate a trained checkpoint (a stage-2 .pt file, or a run folder: its best.pt) on the test "
        "protocols of its dataset: the checkpoint's configuration, then --config, then the overrides (e.g. "
        "data.root=/data/detreidx eval.rerank.enabled=true).",
    ),
    features: Optional[Path] = typer.Option(
        None, "--features", "-f",
        help="Folder with <protocol>/query/ and <protocol>/gallery/ feature sets (features.safetensors + meta.csv), "
        "e.g. A2G, G2A, A2A.",
    ),
    query: Optional[Path] = typer.Option(None, "--query-features", help="One query feature-set folder."),
    gallery: Optional[Path] = typer.Option(None, "--gallery-features", help="Its gallery feature-set folder."),
    name: str = typer.Option(
        "test", "--name",
        help="Protocol name for --query-features/--gallery-features (A2G, G2A, A2A are challenge cases).",
    ),
    protocol: list[str] = typer.Option([], "--protocol", "-p", help="Only this protocol of --features (repeatable)."),
    score_csv: Optional[Path] = typer.Option(
        None, "--score-csv",
        help="Score this challenge submission CSV against the labels of the feature sets instead of ranking "
        "(use eval.junk=tracklet for the challenge scorer's rule).",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o",
        help="Output folder (default: <out_dir>/<name>/results/eval; with --checkpoint, <run>/results/eval of the "
        "run folder it lies in, else ./runs/<name>/results/eval: never a path stored in the checkpoint).",
    ),
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Evaluate saved features or a checkpoint: A2G / G2A / A2A metrics, optional re-ranking
    (eval.rerank.enabled=true), challenge CSV, ranked-result pictures and an HTML report. Settings come from the
    eval.* config keys."""
    from farreid.utils.log import setup_logging

    if checkpoint is not None:
        if features or query or gallery or score_csv or protocol:
            raise FarreidError("--checkpoint evaluates the checkpoint's dataset; do not combine it with --features, "
                               "--query-features, --gallery-features, --score-csv or --protocol (use data.protocol=...)")
        _evaluate_checkpoint(checkpoint, config, overrides, out)
        return
    cfg = build_config(config, overrides)
    if out is not None and score_csv is None:
        check_output(out, "dir")
    protocols = _load(features, query, gallery, name, protocol)
    if score_csv is not None:
        setup_logging()
        typer.echo(_score(score_csv, protocols, cfg))
        return
    if out is None:
        from farreid.utils.run import create_run

        out = create_run(cfg).results / "eval"
    else:
        setup_logging()
    from farreid.eval import run_evaluation
    from farreid.utils.device import resolve_device

    result = run_evaluation(protocols, out, cfg.eval, device=resolve_device(cfg.device),
                            title=f"farreid evaluation: {cfg.name}")
    typer.echo(result.table())
    typer.echo(f"results in {out}")
