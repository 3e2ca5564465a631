"""`farreid export ...`: deployment formats."""

import typer

from farreid.cli import app
from farreid.cli.common import not_built_yet

export_app = typer.Typer(help="Export a trained model for deployment (onnx).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def onnx() -> None:
    """Export the image tower + adapters + pooling to ONNX, checked against PyTorch with onnxruntime."""
    not_built_yet("export onnx", 9)
