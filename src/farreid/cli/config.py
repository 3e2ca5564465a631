"""`farreid config`: see the resolved configuration before running anything."""

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config


@app.command("config")
def config(
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
    keys: bool = typer.Option(False, "--keys", help="List every valid dotted key instead."),
    recipes: bool = typer.Option(False, "--recipes", help="List the shipped recipes instead."),
) -> None:
    """Print the resolved configuration (recipe + overrides, validated) as YAML."""
    from farreid.config import available_recipes, config_to_yaml, schema_keys

    if keys:
        typer.echo("\n".join(schema_keys()))
    elif recipes:
        typer.echo("\n".join(available_recipes()))
    else:
        typer.echo(config_to_yaml(build_config(config, overrides)), nl=False)
