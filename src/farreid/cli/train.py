"""`farreid train`: a thin shell over `farreid.engine.train`."""

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, ResumeOption, build_config


@app.command("train")
def train(
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
    resume: Optional[str] = ResumeOption,
) -> None:
    """Train a recipe (stage 1 prompt learning, stage 2 adaptation) on the CPU, one GPU, or many GPUs / nodes
    with torchrun (torchrun --nproc_per_node 4 -m farreid train -c RECIPE ...)."""
    from farreid.engine import train as run_training

    result = run_training(build_config(config, overrides), resume=resume)
    state = "finished" if result.completed else "stopped early"
    typer.echo(f"training {state}: {result.run_dir}")
    if result.best:
        typer.echo(f"best validation mAP {result.best['mAP']:.4f} (R1 {result.best['R1']:.4f}) at epoch {result.best['epoch']}")
