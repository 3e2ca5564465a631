"""`farreid extract`."""

from farreid.cli import app
from farreid.cli.common import not_built_yet


@app.command("extract")
def extract() -> None:
    """Embed every tracklet under a folder into a feature file plus a metadata table."""
    not_built_yet("extract", 9)
