"""`farreid search`."""

from farreid.cli import app
from farreid.cli.common import not_built_yet


@app.command("search")
def search() -> None:
    """Search a gallery of embeddings with a query tracklet or feature file; top-k with scores."""
    not_built_yet("search", 9)
