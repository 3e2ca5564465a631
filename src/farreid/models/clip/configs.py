"""CLIP architectures as data: the named towers farreid can build, and the rules that infer one from weights.

A spec holds only what the weights' shapes cannot tell (heads, activation) plus what they can, so that a
checkpoint's inferred spec and a named one can be compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from farreid.config.schema import CLIP_ACTIVATIONS as ACTIVATIONS
from farreid.errors import FarreidError


@dataclass(frozen=True)
class VisionSpec:
    width: int
    layers: int
    heads: int
    patch_size: int
    image_size: int  # the square resolution the positional embedding was trained at (grid = image_size // patch)
    mlp_width: int
    output_dim: int  # width of `proj`, the joint image-text space

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class TextSpec:
    width: int
    layers: int
    heads: int
    mlp_width: int
    output_dim: int
    context_length: int = 77
    vocab_size: int = 49408


@dataclass(frozen=True)
class ClipSpec:
    name: str
    vision: VisionSpec
    text: TextSpec | None  # None for a vision-only checkpoint
    activation: str = "quick_gelu"  # OpenAI's weights were trained with QuickGELU

    def architecture(self) -> tuple:
        """What must agree between a named backbone and a checkpoint (training resolution excluded:
        the positional embedding is resized anyway)."""
        return (replace(self.vision, image_size=0), self.text)


def _vit(width: int, layers: int, patch: int, image: int, out: int) -> VisionSpec:
    return VisionSpec(width, layers, width // 64, patch, image, 4 * width, out)


def _text(width: int, layers: int, out: int) -> TextSpec:
    return TextSpec(width, layers, width // 64, 4 * width, out)


CLIP_CONFIGS: dict[str, ClipSpec] = {
    spec.name: spec
    for spec in (
        ClipSpec("ViT-B/32", _vit(768, 12, 32, 224, 512), _text(512, 12, 512)),
        ClipSpec("ViT-B/16", _vit(768, 12, 16, 224, 512), _text(512, 12, 512)),
        ClipSpec("ViT-L/14", _vit(1024, 24, 14, 224, 768), _text(768, 12, 768)),
        ClipSpec("ViT-L/14-336", _vit(1024, 24, 14, 336, 768), _text(768, 12, 768)),
        # The CPU demo backbone (`farreid pretrain` makes its towers; shipped as `synthetic-people-tiny`). The
        # text tower is narrow because its 49408-word embedding is most of the shipped file (10 MB in fp16).
        ClipSpec("tiny", _vit(192, 4, 16, 128, 128), _text(64, 2, 128)),
        # The smallest tower with the full structure, for unit tests.
        ClipSpec("test", _vit(128, 2, 16, 64, 64), _text(128, 2, 64)),
    )
}


def clip_config(name: str) -> ClipSpec:
    try:
        return CLIP_CONFIGS[name]
    except KeyError:
        raise FarreidError(
            f"unknown CLIP backbone '{name}'; known: {', '.join(CLIP_CONFIGS)} (or give a checkpoint path)"
        ) from None


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise FarreidError(f"unknown activation '{name}'; expected one of {', '.join(ACTIVATIONS)}")
    return name
