"""`farreid demo`: the main job, end to end on synthetic data."""

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import OverridesArgument
from farreid.demo import DEFAULT_MINUTES, run_demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for data, runs, evaluations and report.html."),
    minutes: float = typer.Option(
        DEFAULT_MINUTES, "--minutes", "-m",
        help="Training budget on a 2-core CPU; epochs scale with it (more minutes, better accuracy).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the data and the training runs."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete --out first instead of continuing an earlier demo."),
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Generate synthetic aerial-ground data, train the demo_tiny recipe (stage 1 + 2, attention and mean
    pooling), evaluate A2G / G2A / A2A with and without re-ranking, and write report.html."""
    result = run_demo(out, minutes=minutes, seed=seed, fresh=fresh, overrides=overrides or ())
    typer.echo("\nResults (%):\n" + result.table)
    typer.echo(f"\nreport: {result.report.resolve()}  ({result.seconds / 60:.1f} min)")
