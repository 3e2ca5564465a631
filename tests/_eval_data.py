"""Small synthetic feature sets and protocols for the evaluation tests (deterministic, no files unless asked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from farreid.eval import FeatureSet, ProtocolData


def clustered(rng: np.random.Generator, n: int, centers: np.ndarray, noise: float = 0.9):
    """Features around identity centres; returns (features float32 tensor, pids)."""
    pids = rng.integers(0, len(centers), n)
    feats = centers[pids] + noise * rng.normal(size=(n, centers.shape[1]))
    return torch.from_numpy(feats.astype(np.float32)), pids


def feature_set(rng, n, centers, platform, prefix, frames=(), anonymised=False, cameras=(0, 1)) -> FeatureSet:
    feats, pids = clustered(rng, n, centers)
    return FeatureSet(
        feats, [f"{prefix}{i:04d}" for i in range(n)], np.full(n, -1) if anonymised else pids,
        rng.integers(cameras[0], cameras[1] + 1, n), [platform] * n, [tuple(frames)] * n,
    )


def frames_on_disk(folder: Path, count: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i}.png"
        Image.new("RGB", (16, 32), (60 * i, 120, 200 - 50 * i)).save(path)
        paths.append(str(path))
    return paths


def challenge_protocols(seed=0, nq=12, ng=40, ids=10, dim=16, frames=(), anonymised=False) -> list[ProtocolData]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    out = []
    platforms = {"A2G": ("aerial", "ground"), "G2A": ("ground", "aerial"), "A2A": ("aerial", "aerial")}
    for name, (qp, gp) in platforms.items():
        q = feature_set(rng, nq, centers, qp, f"{name}_q", frames, anonymised)
        g = feature_set(rng, ng, centers, gp, f"{name}_g", frames, anonymised, cameras=(1, 2))
        out.append(ProtocolData(name, q, g))
    return out
