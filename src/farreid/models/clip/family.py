"""The CLIP family's entry points for the backbone registry (`farreid.models.backbone`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from farreid.models.backbone import check_spec_fields
from farreid.models.clip.checkpoint import infer_spec
from farreid.models.clip.configs import ACTIVATIONS, ClipSpec, TextSpec, VisionSpec
from farreid.models.clip.factory import create_clip
from farreid.models.clip.model import CLIP

VISION_FIELDS = tuple(VisionSpec.__dataclass_fields__)
TEXT_FIELDS = tuple(TextSpec.__dataclass_fields__)


def reads(path: Path) -> bool:
    """Any file (OpenAI, open_clip, safetensors), or a Hugging Face `CLIPModel` folder."""
    if path.is_file():
        return True
    config = path / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type", "clip").startswith("clip")


def create(backbone: str, pretrained: str | Path, activation: str, allow_torchscript: bool, **build: Any) -> CLIP:
    return create_clip(backbone, pretrained, activation=activation, allow_torchscript=allow_torchscript, **build)


def rebuild(spec: Mapping[str, Any], weights: Mapping[str, Tensor], **build: Any) -> CLIP:
    """Empty towers for the recorded spec, which must describe the stored weights' shapes."""
    clip_spec = _spec_from_record(spec)
    inferred = _inferred_spec(weights, clip_spec.name)
    if _shape_fields(clip_spec) != _shape_fields(inferred):
        raise ValueError(f"it does not match the stored weights (they describe {_shape_fields(inferred)})")
    if clip_spec.vision.width % clip_spec.vision.heads or (clip_spec.text and clip_spec.text.width % clip_spec.text.heads):
        raise ValueError("the attention heads do not divide the width")
    return CLIP(clip_spec, **build)


def _spec_from_record(data: Mapping[str, Any]) -> ClipSpec:
    """The recorded spec, refusing unknown keys and values that are not positive integers of sane size."""
    if not isinstance(data, Mapping) or not isinstance(data.get("vision"), Mapping):
        raise ValueError("it is not a mapping with a 'vision' entry")
    unknown = set(data) - {"name", "vision", "text", "activation"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}")
    text = data.get("text")
    check_spec_fields(data["vision"], VISION_FIELDS, "vision")
    if text is not None:
        check_spec_fields(text, TEXT_FIELDS, "text")
    if data.get("activation", "quick_gelu") not in ACTIVATIONS:
        raise ValueError(f"activation {data.get('activation')!r} is not one of {', '.join(ACTIVATIONS)}")
    return ClipSpec(
        name=str(data.get("name", "")), vision=VisionSpec(**data["vision"]), text=TextSpec(**text) if text else None,
        activation=data.get("activation", "quick_gelu"),
    )


def _shape_fields(spec: ClipSpec) -> tuple:
    """What the weight shapes determine (heads are a choice, and the training resolution was resized away)."""
    text = replace(spec.text, heads=0) if spec.text else None
    return replace(spec.vision, heads=0, image_size=0), text


def _openai_names(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The towers' tensors under OpenAI's names (`visual.*`, text keys un-prefixed)."""
    out = {}
    for key, value in weights.items():
        if key.startswith("visual."):
            out[key] = value
        elif key.startswith("text."):
            out[key[len("text."):]] = value
    return out


def _inferred_spec(weights: Mapping[str, Tensor], name: str) -> ClipSpec:
    """The architecture the towers' weight shapes describe (the activation is not in the shapes)."""
    named = _openai_names(weights)
    pos = named.get("visual.positional_embedding")
    if pos is not None:  # resized to the ReID grid already; only its width matters for the architecture
        named["visual.positional_embedding"] = pos[:2]
    return infer_spec(named, name=name)
