"""A tiny trained farreid checkpoint and its synthetic data set, made once per test session.

The checkpoint is real: `farreid.engine.train` runs stage 2 (text losses off, so no stage 1) for one epoch
of a `test`-backbone model (2 blocks, width 128) at 64x32 on a 12-identity synthetic DetReIDX-layout set.
Several test modules use it; the module-level cache makes sure it is built once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import farreid
from farreid.config import load_config
from farreid.data.synthetic import generate
from farreid.engine import train

TINY_OVERRIDES = [
    "data.dataset=detreidx", "model.image_size=[64,32]", "data.train_frames=2", "data.test_frames=4",
    "data.ids_per_batch=2", "data.tracklets_per_id=2", "data.workers=0",
    "model.backbone=test", "model.adapter.bottleneck=32", "model.pbp.length=2", "model.pbp.depth=1",
    "model.pbp.key=platform", "model.finetune_last_n=1", "model.text.n_ctx=2", "model.text.n_id_tokens=1",
    "train.stages=[stage2]", "train.stage2.epochs=1", "train.stage2.warmup_epochs=0",
    "train.stage2.loss.i2t_weight=0", "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0",
    "eval.batch_size=8", "eval.show_queries=1", "device=cpu", "precision=fp32",
]
_CACHE: dict[str, "Trained"] = {}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run far faster on one thread than on two cores shared with other jobs (no OpenMP spinning).
    Autouse in every module that imports it; module scope, so module fixtures (training, extraction) get it too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Trained:
    root: Path
    data: Path  # DetReIDX-layout synthetic data (12 ids: 6 train, 6 test)
    run: Path  # the training run directory
    checkpoint: Path  # its final stage-2 checkpoint


def tiny_trained(tmp_path_factory) -> Trained:
    if "tiny" not in _CACHE:
        root = tmp_path_factory.mktemp("tiny_trained")
        data = root / "data"
        generate(data, num_ids=12, seed=0, frames=5, ground_tracklets=2, aerial_tracklets=1)
        cfg = load_config(None, [f"out_dir={root}/runs", "name=tiny", f"data.root={data}", *TINY_OVERRIDES])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result = train(cfg, console=False)
        finally:
            torch.set_num_threads(threads)
        _CACHE["tiny"] = Trained(root, data, result.run_dir, result.last_checkpoint)
    return _CACHE["tiny"]


def png_tracklet(folder: Path, frames: int = 5, size: tuple[int, int] = (40, 80), seed: int = 0) -> list[Path]:
    """A tracklet folder of PNG frames (lossless, so every input form sees the same pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0], 3))
    paths = []
    for i in range(frames):
        frame = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:04d}.png")
        Image.fromarray(frame).save(paths[-1])
    return paths


def subprocess_env() -> dict[str, str]:
    """Environment for a child `python -m farreid` importing this checkout's package."""
    src = str(Path(farreid.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
