"""`farreid export ...`: deployment formats."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app

export_app = typer.Typer(help="Export a trained model for deployment (onnx).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def onnx(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Trained stage-2 checkpoint (.pt), or a run folder (its checkpoints/best.pt)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="ONNX file to write (only after the parity check passes)."),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Put flip test-time augmentation inside the graph (default: eval.flip)."
    ),
    atol: float = typer.Option(1e-4, "--atol", help="Largest allowed |onnxruntime - PyTorch| (fp32)."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default: the exporter's)."),
) -> None:
    """Export the image tower + adapters + prompts + pooling to ONNX (dynamic batch and frames), checked against
    PyTorch with onnxruntime. Inputs: clip (B,T,3,H,W) normalised, keys (B,), mask (B,T); see the file's metadata."""
    from farreid.config import check_option
    from farreid.inference.export import export_onnx
    from farreid.utils.io import check_output
    from farreid.utils.log import setup_logging

    check_option("export onnx --opset", opset, "--opset")
    check_option("export onnx --atol", atol, "--atol")
    check_output(out, "file")
    setup_logging()
    report = export_onnx(checkpoint, out, flip=flip, atol=atol, opset=opset)
    typer.echo(
        f"wrote {report.path} ({report.size_mb:.1f} MB, {report.dim}-d embeddings); onnxruntime vs PyTorch: max abs "
        f"diff {report.max_abs_diff:.2e} over (B, T) = {report.checked_shapes}"
    )
