"""Rebuild a trained FarReID from a farreid training checkpoint, without the original CLIP weight file.

A stage-2 checkpoint (`runs/<name>/checkpoints/best.pt` or `stage2-step*.pt`) holds the model weights, the
configuration it was trained with and `model_info`: the CLIP architecture and the number of prompt keys (the
recorded architecture is checked against the weight shapes). `model.pretrained` is never read: the checkpoint
already holds every weight, and a deployment machine usually does not have the original file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from farreid.config import Config, config_from_dict
from farreid.engine.checkpoint import CheckpointError, load_checkpoint
from farreid.models import FarReID
from farreid.models.clip import CLIP
from farreid.models.clip.checkpoint import infer_spec
from farreid.models.clip.configs import ACTIVATIONS, ClipSpec, TextSpec, VisionSpec


@dataclass
class LoadedCheckpoint:
    model: FarReID  # eval mode, on the CPU, no gradients
    cfg: Config  # the configuration the model was trained with
    path: Path  # the checkpoint file
    stage: str
    step: int
    complete: bool  # False for a checkpoint written before stage 2 finished


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its `checkpoints/best.pt`, else its newest stage-2 checkpoint)."""
    path = Path(path)
    if not path.is_dir():
        return path
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if (folder / "best.pt").is_file():
        return folder / "best.pt"
    steps = sorted(folder.glob("stage2-step*.pt"))
    if steps:
        return steps[-1]
    raise CheckpointError(
        f"{path} is a folder without a stage-2 checkpoint (looked for best.pt and stage2-step*.pt in {folder})"
    )


def _spec_from_dict(data: Mapping[str, Any]) -> ClipSpec:
    """The recorded spec, refusing unknown keys and values that are not positive integers of sane size."""
    if not isinstance(data, Mapping) or not isinstance(data.get("vision"), Mapping):
        raise ValueError("it is not a mapping with a 'vision' entry")
    unknown = set(data) - {"name", "vision", "text", "activation"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}")
    text = data.get("text")
    for part, values in (("vision", data["vision"]), ("text", text or {})):
        if not isinstance(values, Mapping):
            raise ValueError(f"'{part}' is not a mapping")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 20:
                raise ValueError(f"{part}.{key} = {value!r} is not a positive integer of a plausible size")
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


def _openai_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's `clip.*` tensors under OpenAI's names (`visual.*`, text keys un-prefixed)."""
    out = {}
    for key, value in state.items():
        if key.startswith("clip.visual."):
            out[key[len("clip."):]] = value
        elif key.startswith("clip.text."):
            out[key[len("clip.text."):]] = value
    return out


def _clip_spec(info: Mapping[str, Any], state: Mapping[str, torch.Tensor], cfg: Config) -> ClipSpec:
    """The recorded spec, checked against the weight shapes."""
    try:
        spec = _spec_from_dict(info["clip_spec"])
        inferred = _inferred_spec(state, cfg, "quick_gelu")
        if _shape_fields(spec) != _shape_fields(inferred):
            raise ValueError(f"it does not match the stored weights (they describe {_shape_fields(inferred)})")
        if spec.vision.width % spec.vision.heads or (spec.text and spec.text.width % spec.text.heads):
            raise ValueError("the attention heads do not divide the width")
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint's recorded CLIP architecture (model_info.clip_spec): {exc}") from None
    return spec


def _inferred_spec(state: Mapping[str, torch.Tensor], cfg: Config, activation: str) -> ClipSpec:
    """The architecture the model's `clip.*` weight shapes describe."""
    weights = _openai_names(state)
    pos = weights.get("visual.positional_embedding")
    if pos is not None:  # resized to the ReID grid already; only its width matters for the architecture
        weights["visual.positional_embedding"] = pos[:2]
    try:
        return infer_spec(weights, name=cfg.model.backbone, activation=activation)
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint's model weights lack {exc.args[0]!r}: not a FarReID model") from None


INFERENCE_KEYS = ("stage", "loop", "model", "model_info", "num_classes", "config")  # what rebuilds the model


@dataclass
class StoredCheckpoint:
    """A stage-2 checkpoint file, read once (never unpickling code): its path, its stored entries and the
    configuration it was trained with. Hand it to whatever needs the file (`checkpoint_config`,
    `load_trained_model`, `ReIDModel.from_checkpoint`, `evaluate_checkpoint`) instead of the path."""

    path: Path
    state: Mapping[str, Any]
    cfg: Config  # as trained, with `out_dir` back at the schema's relative default

    @classmethod
    def read(cls, path: str | Path) -> "StoredCheckpoint":
        """Read a checkpoint file, or a run directory's best (see `resolve_checkpoint_path`)."""
        path = resolve_checkpoint_path(path)
        state = load_checkpoint(path)
        stage = state.get("stage")
        if stage == "stage1":
            raise CheckpointError(
                f"{path} is a stage-1 checkpoint (learned text prompts only, no adapted image model); "
                "use a stage-2 checkpoint such as checkpoints/best.pt or stage2-step*.pt after stage 2 has run"
            )
        weights = state.get("model")
        if stage != "stage2" or not isinstance(weights, Mapping) or "config" not in state or "num_classes" not in state:
            raise CheckpointError(f"{path} holds no trained model (expected a stage-2 farreid checkpoint)")
        # a path stored in a file someone hands us never decides where we write
        cfg = config_from_dict(state["config"], source=f"the configuration stored in {path}")
        cfg.out_dir = Config().out_dir
        # the optimiser moments and RNG states are dropped: an evaluation holds this object while it runs
        return cls(path, {k: state[k] for k in INFERENCE_KEYS if k in state}, cfg)

    @classmethod
    def of(cls, source: "str | Path | StoredCheckpoint") -> "StoredCheckpoint":
        return source if isinstance(source, StoredCheckpoint) else cls.read(source)


def run_folder_of(checkpoint: str | Path) -> Path | None:
    """The training run folder a checkpoint path given by the user names (`<run>` or `<run>/checkpoints/x.pt`)."""
    path = Path(checkpoint)
    if path.is_dir():
        return path if (path / "checkpoints").is_dir() else (path.parent if path.name == "checkpoints" else None)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def checkpoint_config(checkpoint: str | Path | StoredCheckpoint) -> Config:
    """The configuration a stage-2 checkpoint was trained with, with `device` and `precision` back at `auto`
    (where a model was trained says nothing about where it runs now) and `out_dir` at its relative default."""
    cfg = copy.deepcopy(StoredCheckpoint.of(checkpoint).cfg)
    cfg.device, cfg.precision = "auto", "auto"
    return cfg


def load_trained_model(checkpoint: str | Path | StoredCheckpoint) -> LoadedCheckpoint:
    """Rebuild the FarReID of a stage-2 training checkpoint (a path is read first), frozen for inference. Its
    parameters are the stored tensors themselves (an evaluation holding the `StoredCheckpoint` keeps one copy)."""
    stored = StoredCheckpoint.of(checkpoint)
    path, state, cfg = stored.path, stored.state, stored.cfg
    weights = state["model"]
    info = state.get("model_info")
    if not isinstance(info, Mapping) or not info.get("clip_spec") or "num_keys" not in info:
        raise CheckpointError(f"{path} has no model_info record (clip_spec, num_keys) of the model it holds: not a "
                              "stage-2 checkpoint written by farreid")
    spec = _clip_spec(info, weights, cfg)
    clip = CLIP(spec, image_size=tuple(cfg.model.image_size), stride=cfg.model.stride or None,
                pos_resize=cfg.model.pos_resize)
    model = FarReID(cfg.model, int(state["num_classes"]), int(info["num_keys"]), clip=clip)
    try:
        model.load_state_dict(weights, assign=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:3])
        raise CheckpointError(f"{path}: the stored weights do not fit the model its configuration describes: {first}") from None
    model.eval().requires_grad_(False)
    loop = state.get("loop") or {}
    return LoadedCheckpoint(model, cfg, path, state["stage"], int(loop.get("step", 0)), bool(loop.get("complete", False)))
