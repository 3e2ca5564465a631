"""`farreid extract`: embed every tracklet under a folder layout into sharded, resumable feature sets.

Each split is written as `features-00000.safetensors`, `features-00001.safetensors`, ... (`shard_size`
tracklets each), one `meta.csv` and, last, `manifest.json` (see `farreid.eval.features`). Every file is written
atomically. `extract.json`, written first, records what is being extracted (checkpoint, its size and time
stamp, input size, frames, sampling, flip, precision, and a digest of the tracklet list); each shard's header
carries the digest of those settings and its first row. A run that stopped (crash, Ctrl-C, a killed job) is
resumed by running the same command again: complete shards with the same settings are kept, the others are
embedded. Other settings or another tracklet list in the same folder is an error unless `overwrite=True`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from farreid.data import Tracklet
from farreid.errors import FarreidError
from farreid.eval.features import (
    FEATURES_FILE,
    MANIFEST_FILE,
    META_FILE,
    check_text_names,
    meta_row,
    shard_file,
    shard_header,
    write_feature_shard,
    write_manifest,
    write_meta_table,
)
from farreid.eval.pictures import pick_frames
from farreid.inference.layouts import input_splits
from farreid.inference.model import ReIDModel
from farreid.utils.io import atomic_write_json, remove_stale_temps, safe_join
from farreid.utils.log import get_logger, progress

PLAN_FILE = "extract.json"
KEEP_FRAMES = 8  # frame paths kept per tracklet in meta.csv (for pictures); num_frames keeps the length
log = get_logger("inference")


@dataclass
class SplitSummary:
    name: str
    folder: Path
    tracklets: int
    shards: int
    embedded: int  # shards embedded by this run
    kept: int  # complete shards kept from an earlier run
    seconds: float


def _tracklets_digest(tracklets: Sequence[Tracklet]) -> str:
    digest = hashlib.sha256()
    for t in tracklets:
        digest.update(f"{t.name}\0{len(t.frames)}\0{t.frames[0]}\0{t.camid}\0{t.platform}\n".encode())
    return digest.hexdigest()


def extraction_settings(model: ReIDModel, tracklets: Sequence[Tracklet], shard_size: int) -> dict[str, str]:
    """What makes two extractions interchangeable; stored in extract.json and the manifest."""
    settings = dict(model.describe())
    if model.source and Path(model.source).is_file():
        stat = Path(model.source).stat()
        settings["checkpoint_stamp"] = f"{stat.st_size}-{stat.st_mtime_ns}"
    settings.update(rows=str(len(tracklets)), shard_size=str(shard_size), tracklets_sha256=_tracklets_digest(tracklets))
    return settings


def _clear(folder: Path) -> None:
    """Remove the files an extraction writes (and nothing else)."""
    for path in [*folder.glob("features-*.safetensors"), *(folder / n for n in (FEATURES_FILE, MANIFEST_FILE, META_FILE, PLAN_FILE))]:
        path.unlink(missing_ok=True)


def _prepare(folder: Path, settings: dict[str, str], overwrite: bool) -> None:
    plan = folder / PLAN_FILE
    previous = None
    if plan.is_file():
        try:
            previous = json.loads(plan.read_text())
        except ValueError:
            previous = {}
    elif (folder / FEATURES_FILE).is_file() or (folder / MANIFEST_FILE).is_file() or any(folder.glob("features-*.safetensors")):
        previous = {}
    if previous is None or previous == settings:
        if overwrite:
            _clear(folder)
        return
    if not overwrite:
        changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        raise FarreidError(
            f"{folder} already holds features extracted with other settings or tracklets (differing: "
            f"{', '.join(changed) or 'unknown'}); pass --overwrite to replace them, or choose another --out"
        )
    _clear(folder)


def _meta_rows(tracklets: Sequence[Tracklet]):
    for t in tracklets:
        yield meta_row(t.name, t.pid, t.camid, t.platform, np.nan if t.altitude is None else t.altitude,
                       np.nan if t.distance is None else t.distance, pick_frames(t.frames, KEEP_FRAMES), len(t.frames))


def extract_split(
    model: ReIDModel, tracklets: Sequence[Tracklet], folder: str | Path, *, shard_size: int = 4096,
    overwrite: bool = False, name: str = "",
) -> SplitSummary:
    """Embed `tracklets` into the sharded feature set `folder`, keeping complete shards of an earlier run."""
    if shard_size < 1:
        raise FarreidError(f"shard size must be >= 1, got {shard_size}")
    if not len(tracklets):
        raise FarreidError(f"nothing to extract into {folder}: no tracklets")
    start_time = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)  # a killed extraction's half-written shard
    settings = extraction_settings(model, tracklets, shard_size)
    _prepare(folder, settings, overwrite)
    stamp = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]
    starts = list(range(0, len(tracklets), shard_size))
    summary = SplitSummary(name, folder, len(tracklets), len(starts), 0, 0, 0.0)
    if (folder / MANIFEST_FILE).is_file():
        summary.kept = len(starts)
        log.info(f"{name or folder}: already complete ({len(tracklets)} tracklets), nothing to do")
        return summary
    atomic_write_json(folder / PLAN_FILE, settings)
    write_meta_table(folder / META_FILE, _meta_rows(tracklets))
    for index, first in enumerate(progress(starts, desc=f"extract {name or folder.name}", unit="shard")):
        part = tracklets[first : first + shard_size]
        path = folder / shard_file(index)
        header = shard_header(path)
        if header is not None and header[0] == (len(part), model.dim) and header[1] == {"settings": stamp, "first_row": str(first)}:
            summary.kept += 1
            continue
        features = model.embed_tracklets(part)
        write_feature_shard(path, torch.from_numpy(features), {"settings": stamp, "first_row": str(first)})
        summary.embedded += 1
    write_manifest(folder, [shard_file(i) for i in range(len(starts))], len(tracklets), model.dim, settings)
    summary.seconds = time.perf_counter() - start_time
    log.info(f"{name or folder}: {len(tracklets)} tracklets in {len(starts)} shard(s) "
             f"({summary.embedded} embedded, {summary.kept} kept) -> {folder}")
    return summary


def extract_to_store(
    model: ReIDModel,
    input_dir: str | Path,
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    protocol: str = "all",
    train: bool = False,
    options: dict[str, Any] | None = None,
    camid: int = 0,
    platform: str = "ground",
    shard_size: int = 4096,
    overwrite: bool = False,
) -> list[SplitSummary]:
    """Embed every split under `input_dir` (see `farreid.inference.layouts`) into `out_dir`."""
    splits = input_splits(input_dir, dataset, protocol=protocol, train=train, options=options, camid=camid,
                          platform=platform)
    targets = [(split, safe_join(out_dir, *filter(None, split.name.split("/")))) for split in splits]
    for split, _ in targets:  # every split checked before the first is embedded
        model.check_prompt_keys(split.tracklets)
        check_text_names(split.tracklets, f"{input_dir} ({split.name or 'tracklets'})")
    return [
        extract_split(model, split.tracklets, folder, shard_size=shard_size, overwrite=overwrite, name=split.name)
        for split, folder in targets
    ]
