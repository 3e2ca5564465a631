"""Users' own data: `ROOT/{train,query,gallery}/<pid>/<tracklet>/<frames>`.

Tracklets are named `<pid folder>/<tracklet folder>` (unique even when every identity has a `t1`). Camera,
platform and capture metadata come from either
- a regular expression (`pattern`) searched in `<tracklet folder>/<first frame name>`, with any of the named
  groups `camid`, `platform` (ground/aerial), `altitude`, `distance`, `pitch`, `session`, e.g.
  `pattern="_c(?P<camid>\\d+)_(?P<platform>ground|aerial)"`; every tracklet must match; or
- a CSV sidecar (`sidecar`, default `ROOT/tracklets.csv` when present) with a `path` column naming the tracklet
  folder relative to ROOT (`train/0001/t1`) and any of the columns above; every tracklet needs a row.
Without either, every tracklet is camera 0 on the ground. Query/gallery may be anonymised as in DetReIDX.
The single test protocol is called `test`; a dataset without query/gallery folders has no protocol.
`folder_splits` reads whichever splits exist (what `farreid data stats` shows and `farreid extract` embeds).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from farreid.data.registry import register_dataset
from farreid.data.scan import require_dir, require_file
from farreid.data.splittree import Describe, TrackletInfo, load_split
from farreid.data.tracklet import Protocol, ReIDDataset, TrackletSet, relabel
from farreid.errors import FarreidError

SPLITS = ("train", "query", "gallery")
FIELDS = ("camid", "platform", "altitude", "distance", "pitch", "session")
SIDECAR = "tracklets.csv"


def _info(values: dict[str, str | None], where: str) -> TrackletInfo:
    """A TrackletInfo from text values (missing or empty = default)."""
    given = {k: v.strip() for k, v in values.items() if k in FIELDS and v is not None and v.strip() != ""}
    try:
        platform = given.get("platform", "ground").lower()
        if platform not in ("ground", "aerial"):
            raise ValueError(f"platform must be ground or aerial, got {platform!r}")
        floats = {k: float(given[k]) for k in ("altitude", "distance", "pitch") if k in given}
        session = int(given["session"]) if "session" in given else None
        return TrackletInfo(platform, int(given.get("camid", 0)), session=session, **floats)
    except ValueError as exc:
        raise FarreidError(f"bad tracklet metadata for {where}: {exc}") from None


def _pattern_describe(pattern: str) -> Describe:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise FarreidError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if not set(regex.groupindex) & set(FIELDS):
        raise FarreidError(f"pattern {pattern!r} has none of the named groups {FIELDS}")

    def describe(folder: Path, frames: list[str], name: str) -> TrackletInfo:
        text = f"{folder.name}/{frames[0]}"
        match = regex.search(text)
        if match is None:
            raise FarreidError(f"tracklet {folder} does not match pattern {pattern!r} (searched in {text!r})")
        return _info(match.groupdict(), str(folder))

    return describe


def _sidecar_describe(path: Path, root: Path) -> Describe:
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error) as exc:
        raise FarreidError(f"cannot read sidecar {path}: {exc}") from None
    if not rows or "path" not in rows[0]:
        raise FarreidError(f"sidecar {path} needs a header with a 'path' column and at least one row")
    table = {(row["path"] or "").strip().strip("/"): row for row in rows}

    def describe(folder: Path, frames: list[str], name: str) -> TrackletInfo:
        key = folder.relative_to(root).as_posix()
        if key not in table:
            raise FarreidError(f"tracklet {folder} has no row in sidecar {path} (path column {key!r})")
        return _info(table[key], f"{key} in {path}")

    return describe


def folder_describe(root: Path, pattern: str = "", sidecar: str = "") -> Describe:
    """How the layout at `root` gives each tracklet its metadata: the pattern, the sidecar CSV (default
    `ROOT/tracklets.csv` when present), else camera 0 on the ground. Also serves single split folders
    (e.g. a gallery cut from tracker output) to `farreid extract`."""
    if pattern and sidecar:
        raise FarreidError("give camera metadata either as a pattern or as a sidecar CSV, not both")
    sidecar_path = require_file(sidecar, "sidecar CSV") if sidecar else root / SIDECAR
    if pattern:
        return _pattern_describe(pattern)
    if sidecar_path.is_file():
        return _sidecar_describe(sidecar_path, root)

    def describe(folder: Path, frames: list[str], name: str) -> TrackletInfo:
        return TrackletInfo("ground", 0)

    return describe


def folder_splits(root: str | Path, pattern: str = "", sidecar: str = "", train: bool = True) -> list[TrackletSet]:
    """Every split folder present under `root` (train only if `train`), with the layout's metadata and the pids
    as written on disk; no split folder at all is an error."""
    root = require_dir(root, "dataset root")
    present = [s for s in SPLITS if (root / s).is_dir() and (s != "train" or train)]
    if not present:
        if (root / "train").is_dir():
            raise FarreidError(f"{root} has only a train/ split; pass --train to embed it")
        raise FarreidError(f"{root} has none of the folder layout's split folders {', '.join(SPLITS)}")
    describe = folder_describe(root, pattern, sidecar)
    return [TrackletSet(s, load_split(root / s, False, describe, qualified_names=True)[0]) for s in present]


@register_dataset("folder")
def build_folder(root: Path, pattern: str = "", sidecar: str = "", load_train: bool = True) -> ReIDDataset:
    root = require_dir(root, "dataset root")
    splits = [s for s in SPLITS if (root / s).is_dir() and (s != "train" or load_train)]
    if ("query" in splits) != ("gallery" in splits):
        missing = "gallery" if "query" in splits else "query"
        raise FarreidError(f"missing split folder {root / missing} (query and gallery come together)")
    if load_train and "train" not in splits:
        require_dir(root / "train", "train split folder")
    describe = folder_describe(root, pattern, sidecar)
    loaded = {s: load_split(root / s, s == "train", describe, qualified_names=True)[0] for s in splits}
    train, raw = relabel(loaded.get("train", []))
    protocols = {}
    if "query" in loaded:
        protocols["test"] = Protocol("test", TrackletSet("query", loaded["query"]), TrackletSet("gallery", loaded["gallery"]))
    return ReIDDataset("folder", str(root), TrackletSet("train", train), protocols, raw)
