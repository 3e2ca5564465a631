"""Options shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from farreid.config import Config

ConfigOption = typer.Option(
    None, "--config", "-c", help="Recipe: a YAML file or a shipped name (demo_tiny, detreidx_vitb16, detreidx_vitl14)."
)
ResumeOption = typer.Option(
    None, "--resume", "-r",
    help="Continue a run: a checkpoint path, or 'auto' for the newest checkpoint in <out_dir>/<name>/checkpoints "
    "(a fresh start when there is none). The configuration must match the checkpoint's.",
)
OverridesArgument = typer.Argument(
    None, help="Dotted overrides KEY=VALUE, e.g. data.root=/data/detreidx model.pooling=mean train.stage2.epochs=10."
)


def build_config(config: Optional[Path], overrides: Optional[list[str]]) -> "Config":
    from farreid.config import load_config

    return load_config(config, overrides or [])

