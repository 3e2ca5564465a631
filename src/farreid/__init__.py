"""farreid: video person re-identification at extreme distance with adapted CLIP vision transformers."""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ReIDModel", "__version__"]

if TYPE_CHECKING:
    from farreid.inference.model import ReIDModel


def __getattr__(name: str) -> Any:
    """`farreid.ReIDModel` imports torch and the model code only when first used (the CLI starts faster)."""
    if name == "ReIDModel":
        from farreid.inference.model import ReIDModel

        return ReIDModel
    raise AttributeError(f"module 'farreid' has no attribute {name!r}")
