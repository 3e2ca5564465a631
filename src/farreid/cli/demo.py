"""`farreid demo`."""

from farreid.cli import app
from farreid.cli.common import not_built_yet


@app.command("demo")
def demo() -> None:
    """Run the whole pipeline on synthetic aerial-ground data: generate, train, evaluate, write report.html."""
    not_built_yet("demo", 10)
