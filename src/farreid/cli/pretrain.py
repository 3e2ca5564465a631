"""`farreid pretrain`: a thin shell over `farreid.engine.pretrain`."""

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, ResumeOption, build_config


@app.command("pretrain")
def pretrain(
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
    out: Optional[Path] = typer.Option(
        None, "--out", "-o",
        help="Also write the finished towers (OpenAI-named safetensors) to this file; its folder must exist.",
    ),
    resume: Optional[str] = ResumeOption,
) -> None:
    """Vision-language pretraining of a backbone's image and text towers (CLIP's contrastive objective) on
    captioned synthetic people: farreid pretrain -c pretrain_tiny. The result is a CLIP checkpoint that
    model.pretrained=PATH reads; the demo starts from the shipped one (synthetic-people-tiny)."""
    from farreid.engine.pretrain import pretrain as run_pretraining

    result = run_pretraining(build_config(config or Path("pretrain_tiny"), overrides), resume=resume, export=out)
    if not result.completed:
        typer.echo(f"pretraining stopped early: {result.run_dir}")
        return
    shots = result.zero_shot
    typer.echo(f"towers: {result.towers}  (sha256 {result.sha256})")
    if shots:
        typer.echo(f"zero-shot on held-out people: top colour mAP {shots['top_mAP']:.3f} (chance "
                   f"{shots['top_chance_mAP']:.3f}), accuracy {shots['top_accuracy']:.3f} (chance "
                   f"{shots['top_chance_accuracy']:.3f})")
