"""`farreid data ...`: dataset tools."""

import typer

from farreid.cli import app
from farreid.cli.common import not_built_yet

data_app = typer.Typer(
    help="Datasets: synthesise a DetReIDX-layout set (synth), print statistics (stats), cut tracklets from "
    "MOT-format tracker output (from-mot).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("synth")
def synth() -> None:
    """Write a small synthetic aerial-ground data set in the DetReIDX layout."""
    not_built_yet("data synth", 4)


@data_app.command("stats")
def stats() -> None:
    """Print identities, tracklets, frames and per-platform counts of a dataset's splits."""
    not_built_yet("data stats", 4)


@data_app.command("from-mot")
def from_mot() -> None:
    """Cut MOT-format tracks (frame,id,x,y,w,h,...) into tracklet folders."""
    not_built_yet("data from-mot", 9)
