"""`farreid train`."""

from farreid.cli import app
from farreid.cli.common import not_built_yet


@app.command("train")
def train() -> None:
    """Train a recipe (stage 1 prompt learning, stage 2 adaptation) on one or many GPUs (torchrun) or the CPU."""
    not_built_yet("train", 7)
