"""Training checkpoints: atomic writes, safe reads, RNG capture, config checks, and the keep-last-k + best policy.

A checkpoint is a plain dict of tensors and Python scalars (read back with `weights_only=True`, never unpickling
code). It stores the configuration it was trained with, so a resume with a different configuration is refused
before any work, naming the keys that differ.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from farreid.config.schema import TRAIN_STAGES
from farreid.errors import FarreidError
from farreid.utils.io import atomic_torch_save

FORMAT = "farreid-train-checkpoint/1"
STAGES = ("pretrain", *TRAIN_STAGES)  # in the order they run; pretraining has a run of its own
STEP_FILE = re.compile(r"^(pretrain|stage[12])-step(\d+)\.pt$")

# Keys that say where things are or how verbosely a run works, not what it computes; they may differ on resume.
RESUME_FREE_KEYS = (
    "name", "out_dir", "device", "data.root", "data.workers", "model.pretrained", "model.allow_torchscript",
    "train.log_every", "train.keep_last", "train.checkpoint_every", "train.eval_every", "train.stage1_checkpoint", "eval",
    "pretrain",  # shapes the `farreid pretrain` run that made model.pretrained, not this one
)
# What a stage-1 result must share with the stage-2 run that reads it: the model and the identity labels.
STAGE1_KEYS = ("seed", "data.dataset", "data.options", "data.val_ids", "model")
# Model keys that only shape stage 2 (stage 1 runs the plain tower, frames averaged, without adapters or prompts):
# a stage-2 ablation may vary them.
STAGE2_ONLY_MODEL_KEYS = ("model.pooling", "model.finetune_last_n", "model.finetune_lr_mult", "model.grad_checkpointing",
                          "model.adapter", "model.pbp")


class CheckpointError(FarreidError):
    """A checkpoint that is missing, unreadable, or does not belong to this configuration."""


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states, as checkpoint-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write `state` (plus the format tag) atomically: a crash leaves the previous file intact."""
    path = Path(path)
    atomic_torch_save({"format": FORMAT, **state}, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint without unpickling code; tensors stay memory-mapped until used."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a farreid training checkpoint (expected format {FORMAT})")
    return state


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _matches(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Iterable[str] = (), only: Iterable[str] | None = None
) -> list[str]:
    """Dotted keys whose values differ, as `key: saved -> current`, restricted to `only` and minus `ignore`."""
    a, b = flatten(saved), flatten(current)
    ignore, only = tuple(ignore), None if only is None else tuple(only)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if _matches(key, ignore) or (only is not None and not _matches(key, only)):
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return diffs


def check_config(
    state: Mapping[str, Any], current: Mapping[str, Any], path: str | Path, *,
    ignore: Iterable[str] = RESUME_FREE_KEYS, only: Iterable[str] | None = None, what: str = "resume",
    remedy: str = "Use the checkpoint's settings (see its run's config.yaml) or start a new run.",
) -> None:
    """Refuse a checkpoint trained with another configuration (keys in `ignore` may differ); `remedy` says
    what to do instead."""
    diffs = config_differences(state.get("config", {}), current, ignore=ignore, only=only)
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise CheckpointError(f"cannot {what} from {path}: it was trained with a different configuration ({shown}). {remedy}")


class CheckpointManager:
    """Checkpoints of one run: `<stage>-step<N>.pt` (the last `keep_last` kept), `stage1.pt` (the stage-1 result
    that stage 2 reads) and `best.pt` (best validation mAP). Only the main rank writes."""

    def __init__(self, directory: str | Path, keep_last: int = 2, enabled: bool = True):
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.enabled = enabled

    def step_path(self, stage: str, step: int) -> Path:
        return self.directory / f"{stage}-step{step:07d}.pt"

    @property
    def stage1_path(self) -> Path:
        return self.directory / "stage1.pt"

    @property
    def best_path(self) -> Path:
        return self.directory / "best.pt"

    def save(self, state: Mapping[str, Any], path: Path) -> Path | None:
        if not self.enabled:
            return None
        save_checkpoint(state, path)
        self._prune()
        return path

    def save_step(self, state: Mapping[str, Any]) -> Path | None:
        return self.save(state, self.step_path(state["stage"], state["step"]))

    def step_checkpoints(self) -> list[Path]:
        """Step checkpoints oldest first (stage 1 before stage 2, then by step)."""
        found = []
        for p in self.directory.glob("*-step*.pt"):
            m = STEP_FILE.match(p.name)
            if m:
                found.append((STAGES.index(m.group(1)), int(m.group(2)), p))
        return [p for _, _, p in sorted(found)]

    def _prune(self) -> None:
        for old in self.step_checkpoints()[: -self.keep_last]:
            old.unlink(missing_ok=True)

    def latest(self, stages: Iterable[str] = STAGES) -> Path | None:
        """The checkpoint a resume of a run training `stages` continues from: its newest step checkpoint, or the
        stage-1 result when stage 1 finished after it (a stage-2-only run reads stage1.pt as input instead)."""
        stages = tuple(stages)
        steps = [p for p in self.step_checkpoints() if STEP_FILE.match(p.name).group(1) in stages]  # type: ignore[union-attr]
        finished1 = "stage1" in stages and self.stage1_path.is_file()
        if steps and not (finished1 and steps[-1].name.startswith("stage1-")):
            return steps[-1]
        return self.stage1_path if finished1 else None
