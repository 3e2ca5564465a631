"""`farreid eval`."""

from farreid.cli import app
from farreid.cli.common import not_built_yet


@app.command("eval")
def evaluate() -> None:
    """Evaluate a checkpoint: A2G / G2A / A2A metrics, re-ranking, challenge CSV, ranked pictures, HTML report."""
    not_built_yet("eval", 8)
