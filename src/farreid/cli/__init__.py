"""The `farreid` command: a thin shell over the library. Each sub-module registers its commands on `app`."""

from __future__ import annotations

import sys

import typer

from farreid.errors import FarreidError

app = typer.Typer(
    name="farreid",
    help=(
        "Video person re-identification at extreme distance: drones at 5-120 m and ground cameras, "
        "CLIP vision transformers adapted to tiny blurred tracklets.\n\n"
        "Most commands take a recipe (--config, a YAML path or a shipped name such as demo_tiny) and dotted "
        "overrides such as model.pooling=mean data.root=/data/detreidx."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

from farreid.cli import (  # noqa: E402,F401  (registration)
    config, data, demo, evaluate, export, extract, pretrain, score, search, train,
)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user-fixable errors (and a full or read-only disk met anywhere) become one line on stderr and
    exit status 2."""
    from farreid.utils.io import FULL_OR_READ_ONLY, output_error

    try:
        app(args=argv, standalone_mode=True)
    except FarreidError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in FULL_OR_READ_ONLY:
            raise
        typer.secho(f"error: {output_error(exc.filename or 'a file', exc)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
