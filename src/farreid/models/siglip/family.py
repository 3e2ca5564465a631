"""The SigLIP family's entry points for the backbone registry (`farreid.models.backbone`)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from farreid.models.backbone import check_spec_fields
from farreid.models.clip.checkpoint import CheckpointError
from farreid.models.clip.model import load_strict
from farreid.models.clip.shipped import resolve_pretrained
from farreid.models.clip.vision import resize_grid
from farreid.models.siglip.configs import SIGLIP_CONFIGS, SiglipSpec, SiglipTextSpec, SiglipVisionSpec
from farreid.models.siglip.hf import is_siglip_folder, read_siglip_folder
from farreid.models.siglip.model import SigLIP

AUTO = ("", "auto")
VISION_FIELDS = tuple(SiglipVisionSpec.__dataclass_fields__)
TEXT_FIELDS = tuple(SiglipTextSpec.__dataclass_fields__)


def reads(path: Path) -> bool:
    return is_siglip_folder(path)


def create(backbone: str, pretrained: str | Path, activation: str, allow_torchscript: bool, **build: Any) -> SigLIP:
    """A named SigLIP architecture with random weights, or the towers of a `SiglipModel` folder (given as
    `pretrained`, or as `backbone` itself). `allow_torchscript` does not apply: the folder is safetensors."""
    if activation not in ("auto", "gelu_tanh"):
        raise CheckpointError(f"model.activation={activation} does not apply to SigLIP (its blocks use gelu_tanh); use auto")
    if not pretrained and backbone not in SIGLIP_CONFIGS:
        backbone, pretrained = "auto", backbone
    if not pretrained:
        return SigLIP(SIGLIP_CONFIGS[backbone], **build)
    path = resolve_pretrained(pretrained)
    if not is_siglip_folder(path):
        raise CheckpointError(
            f"{path} is not a SigLIP folder (config.json with model_type siglip, model.safetensors, spiece.model); "
            f"model.backbone '{backbone}' is a SigLIP architecture"
        )
    folder = read_siglip_folder(path)
    spec = folder.spec
    if backbone not in AUTO:
        named = SIGLIP_CONFIGS[backbone]
        if _architecture(named) != _architecture(spec):
            raise CheckpointError(
                f"model.backbone '{backbone}' disagrees with the SigLIP folder {folder.path} ({spec}); "
                "set model.backbone=auto to take the folder's architecture"
            )
        spec = replace(spec, name=backbone)
    model = SigLIP(spec, **build)
    load_towers(model, folder.state, f"SigLIP folder {folder.path}")
    model.tokenizer = folder.tokenizer
    return model


def load_towers(model: SigLIP, state: dict[str, Tensor], source: str) -> None:
    """Load our-named SigLIP weights strictly; the square positional grid is resized to the tower's grid."""
    state = dict(state)
    visual = {k[len("visual."):]: state.pop(k) for k in list(state) if k.startswith("visual.")}
    text = {k[len("text."):]: state.pop(k) for k in list(state) if k.startswith("text.")}
    pos = visual.get("positional_embedding")
    if pos is not None and pos.shape[0] != model.visual.positional_embedding.shape[0]:
        side = math.isqrt(pos.shape[0])
        if side * side != pos.shape[0]:
            raise CheckpointError(f"{source}: positional embedding of {pos.shape[0]} rows is not a square grid")
        visual["positional_embedding"] = resize_grid(pos.float(), (side, side), model.visual.grid, model.visual.pos_resize)
    load_strict(model.visual, visual, source, "visual.")
    if model.text is not None:
        load_strict(model.text, text, source, "text.")
    elif text:
        raise CheckpointError(f"{source}: holds text-tower weights but the model was built without a text tower")
    for key in ("logit_scale", "logit_bias"):
        if key in state:
            getattr(model, key).data.copy_(state.pop(key).reshape(1))
    if state:
        raise CheckpointError(f"{source}: unexpected weights {sorted(state)[:5]} (not part of SigLIP)")


def rebuild(spec: Mapping[str, Any], weights: Mapping[str, Tensor], **build: Any) -> SigLIP:
    """Empty towers for the recorded spec (the weights are loaded, strictly, with the rest of the model)."""
    return SigLIP(_spec_from_record(spec), **build)


def _spec_from_record(data: Mapping[str, Any]) -> SiglipSpec:
    if not isinstance(data, Mapping) or set(data) != {"name", "vision", "text"}:
        raise ValueError("it is not a mapping of exactly 'name', 'vision' and 'text'")
    check_spec_fields(data["vision"], VISION_FIELDS, "vision")
    vision, text = SiglipVisionSpec(**data["vision"]), None
    if data["text"] is not None:
        check_spec_fields(data["text"], TEXT_FIELDS, "text", token_ids=("pad_id", "eos_id"))
        text = SiglipTextSpec(**data["text"])
    if vision.width % vision.heads or (text and text.width % text.heads):
        raise ValueError("the attention heads do not divide the width")
    return SiglipSpec(str(data["name"]), vision, text)


def _architecture(spec: SiglipSpec) -> tuple:
    """What a named architecture and a folder must share (training resolution and token ids excluded)."""
    text = replace(spec.text, pad_id=0, eos_id=0) if spec.text else None
    return replace(spec.vision, image_size=0), text
