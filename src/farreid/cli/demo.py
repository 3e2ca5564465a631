"""`farreid demo`: the main job, end to end on synthetic data."""

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import OverridesArgument


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for data, runs, evaluations, report.html and summary.json."),
    scale: float = typer.Option(
        1.0, "--scale",
        help="Multiply every training run's epochs by this (1 = the recipe; 0.5 about halves the training time).",
    ),
    ablations: bool = typer.Option(True, "--ablations/--no-ablations", help="Also train one ablation per component."),
    seed: int = typer.Option(0, "--seed", help="Seed for the data and the training runs."),
    fresh: bool = typer.Option(
        False, "--fresh",
        help="Delete what an earlier demo wrote in --out first instead of continuing it (a folder holding anything "
        "else is refused, nothing deleted).",
    ),
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Synthetic aerial-ground data with far-distance faults; the demo_tiny recipe fine-tuned from the shipped
    vision-language towers (stage 1 + 2); the same model from scratch, one ablation per component and a
    colour-histogram baseline; A2G / G2A / A2A evaluation; report.html and summary.json."""
    from farreid.demo import run_demo

    result = run_demo(out, scale=scale, seed=seed, fresh=fresh, overrides=overrides or (), ablations=ablations)
    typer.echo("\nResults (%):\n" + result.table)
    typer.echo(f"\nreport: {result.report.resolve()}\nsummary: {result.summary.resolve()}  ({result.seconds / 60:.1f} min)")
