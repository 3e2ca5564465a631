"""Tracklet-in / embedding-out inference (`ReIDModel`), checkpoint evaluation, feature extraction to a
resumable store, gallery search, ONNX export, and tracklets from MOT tracker output.

The names below are imported on first use, so `farreid.inference.mot` stays light for the data commands.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ReIDModel": "farreid.inference.model",
    "evaluate_checkpoint": "farreid.inference.evaluate",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from farreid.inference.evaluate import evaluate_checkpoint
    from farreid.inference.model import ReIDModel


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'farreid.inference' has no attribute {name!r}")
