"""Checkpoints that ship inside the package, by name: `model.pretrained=synthetic-people-tiny`.

`synthetic-people-tiny` holds the demo's tiny image and text towers after vision-language pretraining on
captioned synthetic people (`farreid pretrain -c pretrain_tiny`; its sha256 and the run that made it are in
docs/models.md). It is an ordinary OpenAI-named CLIP state dict in safetensors, read like any other checkpoint.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHIPPED = {"synthetic-people-tiny": WEIGHTS / "synthetic-people-tiny.safetensors"}


def resolve_pretrained(value: str | Path) -> Path:
    """The file behind a shipped name; any other value is a path, returned as given (user home expanded)."""
    return SHIPPED.get(str(value), Path(value).expanduser())
