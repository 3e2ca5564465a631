"""The feature store: embeddings plus the metadata needed to evaluate, rank and show them.

One folder per split (for example `<root>/A2G/query/`), in one of two forms:

    features.safetensors   tensor "features", float32 (N, D); string metadata (model, flip, ...) in the header
    meta.csv               one row per item, in the same order: name,pid,camid,platform,altitude,distance,frames
                           (pid -1 = unknown label; altitude/distance empty when unknown; frames = JSON list of
                           frame paths, used only for pictures; `farreid extract` keeps at most 8 evenly spaced
                           ones) [,num_frames: the tracklet's length]

or, for large sets (written shard by shard, resumably, by `farreid extract`):

    features-00000.safetensors, features-00001.safetensors, ...   consecutive row blocks of the (N, D) matrix
    manifest.json          written last: format, rows, dim, the shard files in order, the string metadata
    meta.csv               as above

Readers accept both forms (`iter_feature_chunks` streams either without loading it whole); a sharded folder
without its manifest is an unfinished extraction. This module is the format's only reader and writer.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from farreid.eval.validity import check_finite, integer_labels
from farreid.errors import FarreidError
from farreid.utils.io import atomic_open, atomic_write_text, read_text_file

FEATURES_FILE = "features.safetensors"
META_FILE = "meta.csv"
META_COLUMNS = ("name", "pid", "camid", "platform", "altitude", "distance", "frames")
OPTIONAL_COLUMNS = ("num_frames",)  # written since shards exist; files without it still read
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "farreid-features/sharded-1"


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
        self.pids = integer_labels(self.pids, "pids")
        self.camids = integer_labels(self.camids, "camera ids")
        check_finite(self.features, "features")
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


def check_text_names(tracklets: Sequence[Any], where: str) -> None:
    """Names and frame paths are stored as UTF-8 text (meta.csv, CSVs, HTML); a name that is not UTF-8 (a folder
    name in another encoding, which Python keeps as surrogate escapes) is refused before any work, naming it."""
    for t in tracklets:
        for text in (t.name, *t.frames[:1]):
            try:
                str(text).encode("utf-8")
            except UnicodeEncodeError:
                raise FarreidError(
                    f"{where}: {ascii(str(text))} is not a UTF-8 name; farreid stores names as UTF-8 text, so rename "
                    "it (e.g. convmv -f latin1 -t utf8 -r --notest FOLDER)"
                ) from None


def _fmt_float(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


def meta_row(
    name: str, pid: int, camid: int, platform: str, altitude: float, distance: float,
    frames: Sequence[str], num_frames: int | None = None,
) -> list:
    """One `meta.csv` row (columns META_COLUMNS + OPTIONAL_COLUMNS); NaN altitude/distance = unknown."""
    return [name, int(pid), int(camid), platform, _fmt_float(altitude), _fmt_float(distance),
            json.dumps(list(frames)), len(frames) if num_frames is None else int(num_frames)]


def write_meta_table(path: str | Path, rows: Iterable[Sequence]) -> None:
    """Write `meta.csv` rows (from `meta_row`) atomically."""
    with atomic_open(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(META_COLUMNS + OPTIONAL_COLUMNS)
        writer.writerows(rows)


def save_feature_set(fs: FeatureSet, folder: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write `features.safetensors` and `meta.csv` into `folder` (atomically, each file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_feature_shard(folder / FEATURES_FILE, fs.features, metadata)
    write_meta_table(folder / META_FILE, (
        meta_row(fs.names[i], fs.pids[i], fs.camids[i], fs.platforms[i], fs.altitude[i], fs.distance[i], fs.frames[i])
        for i in range(len(fs))
    ))
    return folder


def write_feature_shard(path: str | Path, features: torch.Tensor, metadata: dict[str, str] | None = None) -> None:
    """One safetensors file holding `features` (float32) and string metadata, written atomically."""
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    blob = st_save({"features": features.detach().float().cpu().contiguous()}, metadata=header or None)
    with atomic_open(path, "wb") as fh:
        fh.write(blob)


def shard_file(index: int) -> str:
    return f"features-{index:05d}.safetensors"


def shard_header(path: str | Path) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """(shape of "features", string metadata) of a feature file, or None when it is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return tuple(fh.get_slice("features").get_shape()), dict(fh.metadata() or {})
    except (OSError, SafetensorError, ValueError, KeyError):
        return None


def write_manifest(folder: str | Path, shards: Sequence[str], rows: int, dim: int, metadata: dict[str, str]) -> None:
    """The last file of a sharded feature set: its presence means every shard is complete."""
    atomic_write_text(Path(folder) / MANIFEST_FILE, json.dumps(
        {"format": MANIFEST_FORMAT, "rows": rows, "dim": dim, "shards": list(shards), "metadata": metadata}, indent=2,
    ) + "\n")


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FarreidError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise FarreidError(f"{path} is not a farreid feature manifest (format {MANIFEST_FORMAT})")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, str) and s and Path(s).name == s for s in shards):
        raise FarreidError(f"{path}: 'shards' must be a list of shard file names in the same folder, got {shards!r}")
    if not isinstance(manifest.get("metadata", {}), dict):
        raise FarreidError(f"{path}: 'metadata' must be a mapping")
    return manifest


def has_features(folder: str | Path) -> bool:
    """True when `folder` holds a complete feature set of either form."""
    folder = Path(folder)
    return (folder / FEATURES_FILE).is_file() or (folder / MANIFEST_FILE).is_file()


def _feature_files(folder: Path) -> list[Path]:
    if (folder / MANIFEST_FILE).is_file():
        return [folder / name for name in _manifest(folder)["shards"]]
    if (folder / FEATURES_FILE).is_file():
        return [folder / FEATURES_FILE]
    if any(folder.glob("features-*.safetensors")):
        raise FarreidError(f"{folder}: feature shards without {MANIFEST_FILE}: the extraction did not finish; "
                           "run farreid extract again with the same arguments to complete it")
    raise FarreidError(f"features not found: {folder / FEATURES_FILE} (nor a sharded set with {MANIFEST_FILE})")


def feature_shape(folder: str | Path) -> tuple[int, int]:
    """(N, D) of a feature set of either form, from the file headers only."""
    rows, dim = 0, None
    for path in _feature_files(Path(folder)):
        header = shard_header(path)
        if header is None or len(header[0]) != 2:
            raise FarreidError(f"{path} is missing or not a readable feature file with a 2-D tensor 'features'")
        if dim is not None and header[0][1] != dim:
            raise FarreidError(f"{path}: dimension {header[0][1]} differs from the other shards' {dim}")
        rows, dim = rows + header[0][0], header[0][1]
    return rows, int(dim or 0)


def iter_feature_chunks(folder: str | Path, rows: int = 65536) -> Iterator[torch.Tensor]:
    """The (N, D) features in consecutive float32 blocks of at most `rows` rows (a block never spans two shards),
    read slice by slice: a set larger than memory is never held whole."""
    feature_shape(folder)  # every file checked before the first block is read
    for path in _feature_files(Path(folder)):
        with safe_open(str(path), framework="pt") as fh:
            block = fh.get_slice("features")
            n = block.get_shape()[0]
            for start in range(0, n, rows):
                yield check_finite(block[start : min(start + rows, n)].float(), f"{path}: rows from {start}, the features")


def _read_meta(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FarreidError(f"feature metadata not found: {path}")
    with read_text_file(path) as fh:
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
    """Read a folder written by `save_feature_set` or a sharded extraction (no pickle is ever loaded)."""
    folder = Path(folder)
    files = _feature_files(folder)
    if len(files) == 1 and files[0].name == FEATURES_FILE:
        try:
            tensors = st_load(files[0].read_bytes())
        except (SafetensorError, ValueError) as exc:
            raise FarreidError(f"{files[0]} is not a readable safetensors file: {exc}") from None
        features = tensors.get("features")
        if features is None or features.ndim != 2 or not features.is_floating_point():
            raise FarreidError(f"{files[0]} must hold a 2-D float tensor named 'features'")
        check_finite(features, f"{files[0]}: the features")
    else:
        _, dim = feature_shape(folder)
        features = torch.cat(list(iter_feature_chunks(folder)) or [torch.zeros(0, dim)])
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


def read_meta_rows(folder: str | Path, indices: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Parsed `meta.csv` rows at `indices` (name, pid, camid, platform, altitude, distance, frames), read in one
    streaming pass: a search over a million-row gallery parses only the rows it shows."""
    path = Path(folder) / META_FILE
    wanted = set(int(i) for i in indices)
    out: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        raise FarreidError(f"feature metadata not found: {path}")
    with read_text_file(path) as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i in wanted:
                parsed = _parse([row], path)
                out[i] = {key: parsed[key][0] for key in META_COLUMNS}
                if len(out) == len(wanted):
                    break
    if len(out) != len(wanted):
        raise FarreidError(f"{path} has no row(s) {sorted(wanted - set(out))[:5]}")
    return out


def read_feature_metadata(folder: str | Path) -> dict[str, str]:
    """The string metadata stored with a feature set (model, flip, ...): the manifest's, or the file header's."""
    folder = Path(folder)
    if (folder / MANIFEST_FILE).is_file():
        return {str(k): str(v) for k, v in (_manifest(folder).get("metadata") or {}).items()}
    path = folder / FEATURES_FILE
    if not path.is_file():
        raise FarreidError(f"features not found: {path}")
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})
