"""Rebuild a trained FarReID from a farreid training checkpoint, without the original backbone weight file.

A stage-2 checkpoint (`runs/<name>/checkpoints/best.pt` or `stage2-step*.pt`) holds the model weights, the
configuration it was trained with and `model_info`: the backbone family with its architecture, and the number of
prompt keys (the family checks the recorded architecture against the weight shapes). `model.pretrained` is never read: the checkpoint
already holds every weight, and a deployment machine usually does not have the original file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from farreid.config import Config, config_from_dict
from farreid.engine.checkpoint import CheckpointError, load_checkpoint
from farreid.models import FarReID
from farreid.models.backbone import Backbone, rebuild_backbone


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


def _backbone(path: Path, record: Mapping[str, Any], weights: Mapping[str, torch.Tensor], cfg: Config) -> Backbone:
    """Empty towers from the checkpoint's backbone record (checked against the weight shapes by its family)."""
    towers = {key[len("backbone."):]: value for key, value in weights.items() if key.startswith("backbone.")}
    try:
        return rebuild_backbone(
            record, towers, image_size=tuple(cfg.model.image_size), stride=cfg.model.stride or None,
            pos_resize=cfg.model.pos_resize,
        )
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's model weights lack {exc.args[0]!r}: not a FarReID model") from None
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the recorded backbone (model_info.backbone) is not usable: {exc}") from None


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
    if not isinstance(info, Mapping) or not info.get("backbone") or "num_keys" not in info:
        raise CheckpointError(f"{path} has no model_info record (backbone, num_keys) of the model it holds: not a "
                              "stage-2 checkpoint written by farreid")
    towers = _backbone(path, info["backbone"], weights, cfg)
    model = FarReID(cfg.model, int(state["num_classes"]), int(info["num_keys"]), backbone=towers)
    try:
        model.load_state_dict(weights, assign=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:3])
        raise CheckpointError(f"{path}: the stored weights do not fit the model its configuration describes: {first}") from None
    model.eval().requires_grad_(False)
    loop = state.get("loop") or {}
    return LoadedCheckpoint(model, cfg, path, state["stage"], int(loop.get("step", 0)), bool(loop.get("complete", False)))
