"""`create_clip`: a named architecture with random weights, or a local checkpoint with its inferred one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from farreid.models.clip.checkpoint import CheckpointError, read_checkpoint
from farreid.models.clip.configs import CLIP_CONFIGS, ClipSpec, check_activation, clip_config
from farreid.models.clip.shipped import resolve_pretrained
from farreid.models.clip.model import CLIP

AUTO = ("", "auto")


def describe(spec: ClipSpec) -> str:
    v, t = spec.vision, spec.text
    text = f"; text width {t.width}, {t.layers} blocks" if t else "; no text tower"
    return (
        f"ViT width {v.width}, {v.layers} blocks, {v.heads} heads, patch {v.patch_size}, "
        f"embed dim {v.output_dim}{text}"
    )


def create_clip(
    backbone: str = "ViT-B/16",
    pretrained: str | Path = "",
    image_size: tuple[int, int] | None = None,
    stride: int | None = None,
    pos_resize: str = "bicubic",
    activation: str = "auto",
    allow_torchscript: bool = False,
    autocast: str | None = None,
) -> CLIP:
    """Build CLIP towers for `image_size` (H, W; default the spec's square size).

    `backbone` names a config (ViT-B/16, ViT-L/14, tiny, ...) or is a checkpoint path. With `pretrained`
    the architecture comes from the checkpoint, and a named `backbone` that disagrees with it is an error.
    """
    if not pretrained and backbone not in AUTO and backbone not in CLIP_CONFIGS and resolve_pretrained(backbone).exists():
        backbone, pretrained = "auto", backbone
    build = dict(image_size=image_size, stride=stride or None, pos_resize=pos_resize, autocast=autocast)
    if not pretrained:
        if backbone in AUTO:
            raise CheckpointError("model.backbone is 'auto' but model.pretrained is empty: name a backbone or a checkpoint")
        spec = clip_config(backbone)
        if activation != "auto":
            spec = replace(spec, activation=check_activation(activation))
        return CLIP(spec, **build)
    checkpoint = read_checkpoint(pretrained, allow_torchscript=allow_torchscript, activation=activation)
    spec = checkpoint.spec
    if backbone not in AUTO:
        named = clip_config(backbone)
        if named.architecture() != spec.architecture():
            raise CheckpointError(
                f"model.backbone '{backbone}' ({describe(named)}) disagrees with checkpoint {checkpoint.path} "
                f"({describe(spec)}); set model.backbone=auto to take the checkpoint's architecture"
            )
        spec = replace(spec, name=backbone)
    model = CLIP(spec, **build)
    model.load_openai_state_dict(checkpoint.state, source=f"checkpoint {checkpoint.path}")
    return model
