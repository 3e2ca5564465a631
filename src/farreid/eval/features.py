"""The feature store: embeddings plus the metadata needed to evaluate, rank and show them.

One folder per split (for example `<root>/A2G/query/`):

    features.safetensors   tensor "features", float32 (N, D); string metadata (model, flip, ...) in the header
    meta.csv               one row per item, in the same order: name,pid,camid,platform,altitude,distance,frames
                           (pid -1 = unknown label; altitude/distance empty when unknown; frames = JSON list of
                           frame paths, used only for pictures)

`farreid extract` writes this format and `farreid eval` reads it; this module is its only reader and writer.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from farreid.errors import FarreidError
from farreid.utils.io import atomic_open, atomic_write_text

FEATURES_FILE = "features.safetensors"
META_FILE = "meta.csv"
META_COLUMNS = ("name", "pid", "camid", "platform", "altitude", "distance", "frames")


@dataclass
class FeatureSet:
    """Embeddings of N tracklets with their labels; `pids` of -1 mean "unknown" (anonymised test data)."""

    features: torch.Tensor  # (N, D) float32
    names: list[str]
    pids: np.ndarray  # (N,) int64
    camids: np.ndarray  # (N,) int64
    platforms: list[str]
    frames: list[tuple[str, ...]] = field(default_factory=list)
    altitude: np.ndarray | None = None  # (N,) float64, NaN = unknown
    distance: np.ndarray | None = None

    def __post_init__(self):
        n = self.features.shape[0]
        if self.features.ndim != 2:
            raise FarreidError(f"features must be (N, D), got shape {tuple(self.features.shape)}")
        self.pids = np.asarray(self.pids, dtype=np.int64)
        self.camids = np.asarray(self.camids, dtype=np.int64)
        self.frames = list(self.frames) or [()] * n
        self.altitude = np.full(n, np.nan) if self.altitude is None else np.asarray(self.altitude, dtype=np.float64)
        self.distance = np.full(n, np.nan) if self.distance is None else np.asarray(self.distance, dtype=np.float64)
        for what, column in (("names", self.names), ("pids", self.pids), ("camids", self.camids),
                             ("platforms", self.platforms), ("frames", self.frames),
                             ("altitude", self.altitude), ("distance", self.distance)):
            if len(column) != n:
                raise FarreidError(f"feature set has {n} features but {len(column)} {what}")

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def labelled(self) -> bool:
        """True when every identity is known (metrics can be computed)."""
        return bool(len(self)) and bool((self.pids >= 0).all())

    def subset(self, index: Sequence[int] | np.ndarray) -> "FeatureSet":
        idx = np.asarray(index, dtype=np.int64)
        return FeatureSet(
            self.features[torch.from_numpy(idx)], [self.names[i] for i in idx], self.pids[idx], self.camids[idx],
            [self.platforms[i] for i in idx], [self.frames[i] for i in idx], self.altitude[idx], self.distance[idx],
        )

    @classmethod
    def from_tracklets(cls, features: torch.Tensor, tracklets: Sequence[Any]) -> "FeatureSet":
        """Pair features with records that have name, pid, camid, platform, frames (and optionally altitude,
        distance) attributes, such as `farreid.data.Tracklet`."""
        def num(t, key):
            value = getattr(t, key, None)
            return math.nan if value is None else float(value)

        return cls(
            features=features.detach().float().cpu(),
            names=[t.name for t in tracklets],
            pids=np.array([t.pid for t in tracklets], dtype=np.int64),
            camids=np.array([t.camid for t in tracklets], dtype=np.int64),
            platforms=[t.platform for t in tracklets],
            frames=[tuple(t.frames) for t in tracklets],
            altitude=np.array([num(t, "altitude") for t in tracklets]),
            distance=np.array([num(t, "distance") for t in tracklets]),
        )


def _fmt_float(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


def save_feature_set(fs: FeatureSet, folder: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write `features.safetensors` and `meta.csv` into `folder` (atomically, each file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    blob = st_save({"features": fs.features.detach().float().cpu().contiguous()}, metadata=header or None)
    with atomic_open(folder / FEATURES_FILE, "wb") as fh:
        fh.write(blob)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(META_COLUMNS)
    for i in range(len(fs)):
        writer.writerow([
            fs.names[i], int(fs.pids[i]), int(fs.camids[i]), fs.platforms[i],
            _fmt_float(fs.altitude[i]), _fmt_float(fs.distance[i]), json.dumps(list(fs.frames[i])),
        ])
    atomic_write_text(folder / META_FILE, text.getvalue())
    return folder


def _read_meta(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FarreidError(f"feature metadata not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in META_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FarreidError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(META_COLUMNS)}")
        return list(reader)


def _parse(rows: list[dict[str, str]], path: Path) -> dict[str, Any]:
    out: dict[str, list] = {c: [] for c in META_COLUMNS}
    for line, row in enumerate(rows, start=2):
        try:
            out["name"].append(row["name"])
            out["pid"].append(int(row["pid"]))
            out["camid"].append(int(row["camid"]))
            out["platform"].append(row["platform"])
            out["altitude"].append(float(row["altitude"]) if row["altitude"] else math.nan)
            out["distance"].append(float(row["distance"]) if row["distance"] else math.nan)
            frames = json.loads(row["frames"]) if row["frames"] else []
            if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                raise ValueError("frames must be a JSON list of paths")
            out["frames"].append(tuple(frames))
        except (ValueError, TypeError) as exc:
            raise FarreidError(f"{path}, line {line}: {exc}") from None
    return out


def load_feature_set(folder: str | Path) -> FeatureSet:
    """Read a folder written by `save_feature_set` (no pickle is ever loaded)."""
    folder = Path(folder)
    feature_path = folder / FEATURES_FILE
    if not feature_path.is_file():
        raise FarreidError(f"features not found: {feature_path}")
    try:
        tensors = st_load(feature_path.read_bytes())
    except (SafetensorError, ValueError) as exc:
        raise FarreidError(f"{feature_path} is not a readable safetensors file: {exc}") from None
    features = tensors.get("features")
    if features is None or features.ndim != 2 or not features.is_floating_point():
        raise FarreidError(f"{feature_path} must hold a 2-D float tensor named 'features'")
    meta = _parse(_read_meta(folder / META_FILE), folder / META_FILE)
    if len(meta["name"]) != features.shape[0]:
        raise FarreidError(
            f"{folder}: {features.shape[0]} feature rows but {len(meta['name'])} metadata rows in {META_FILE}"
        )
    return FeatureSet(
        features=features.float(), names=meta["name"], pids=np.array(meta["pid"], dtype=np.int64),
        camids=np.array(meta["camid"], dtype=np.int64), platforms=meta["platform"], frames=meta["frames"],
        altitude=np.array(meta["altitude"], dtype=np.float64), distance=np.array(meta["distance"], dtype=np.float64),
    )


def read_feature_metadata(folder: str | Path) -> dict[str, str]:
    """The string metadata stored in a feature file's header (model, flip, ...)."""
    path = Path(folder) / FEATURES_FILE
    if not path.is_file():
        raise FarreidError(f"features not found: {path}")
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})
