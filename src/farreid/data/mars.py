"""MARS in its published layout.

    ROOT/bbox_train/<pid4>/<pid4>C<cam>T<tracklet>F<frame>.jpg     e.g. 0001/0001C1T0001F001.jpg
    ROOT/bbox_test/...                                              (pid folder 00-1 = junk, 0000 = distractors)
    ROOT/info/{train_name.txt, test_name.txt}                       frame names, one a line
    ROOT/info/{tracks_train_info, tracks_test_info}.mat             rows (first, last, pid, camera), 1-based
    ROOT/info/query_IDX.mat                                         1-based rows of tracks_test_info used as queries

Each `.mat` table may instead be given as `<stem>.csv` or `<stem>.txt` (numbers separated by commas or
whitespace, one row a line) — the conversions many people keep; these are read first and need nothing extra.
A `.mat` file is read with `scipy.io.loadmat`, and only when scipy is installed.
Protocol (as torchreid and most papers report): the gallery is the test tracks that are not queries,
without junk tracks (pid -1); distractors (pid 0) stay in the gallery. Camera ids are 0..5.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from farreid.data.registry import register_dataset
from farreid.data.scan import check_image_header, is_image_name, require_dir, require_file
from farreid.data.tracklet import FrameList, Protocol, ReIDDataset, Tracklet, TrackletSet, relabel
from farreid.errors import FarreidError

_MAT_KEYS = {"tracks_train_info": "track_train_info", "tracks_test_info": "track_test_info", "query_IDX": "query_IDX"}


def read_table(info: Path, stem: str) -> np.ndarray:
    """An integer table from `<stem>.csv`, `<stem>.txt` or `<stem>.mat` (the last needs scipy)."""
    for suffix in (".csv", ".txt"):
        path = info / f"{stem}{suffix}"
        if path.is_file():
            rows = [re.split(r"[,\s]+", line.strip()) for line in path.read_text().splitlines() if line.strip()]
            try:
                return np.array([[int(float(v)) for v in row] for row in rows], dtype=np.int64)
            except ValueError:
                raise FarreidError(f"{path} must hold numbers only (comma or space separated)") from None
    mat = require_file(info / f"{stem}.mat", f"table {stem} (.mat, .csv or .txt)")
    try:
        from scipy.io import loadmat
    except ImportError:
        raise FarreidError(
            f"reading {mat} needs scipy (pip install scipy), or convert it to {stem}.csv beside it"
        ) from None
    return np.asarray(loadmat(str(mat))[_MAT_KEYS.get(stem, stem)], dtype=np.int64)


def read_frame_names(path: Path) -> list[str]:
    """The frame list of a MARS-style `info/` folder: one file name a line."""
    names = [line.strip() for line in require_file(path, "frame list").read_text().splitlines() if line.strip()]
    if not names:
        raise FarreidError(f"frame list {path} is empty")
    bad = next((n for n in names if not is_image_name(n)), None)
    if bad is not None:
        raise FarreidError(f"{path} lists a non-image file {bad!r}")
    return names


def table_tracks(rows: np.ndarray, names: list[str], home: Path, source: str, camera_base: int = 1) -> list[Tracklet]:
    """Tracklets from (first, last, pid, camera) rows over `names` (1-based frame rows). A frame named
    `<pid>C<cam>T<tracklet>F<frame>.jpg` lives in `home/<pid>/`; the tracklet is named up to its `F`."""
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise FarreidError(f"{source} must have 4 columns (first, last, pid, camera), got shape {rows.shape}")
    out = []
    for i, (first, last, pid, cam) in enumerate(rows.tolist()):
        if not 1 <= first <= last <= len(names):
            raise FarreidError(
                f"row {i + 1} of {source}: frames {first}..{last} is empty or outside the {len(names)} listed names"
            )
        chosen = names[first - 1 : last]
        head = chosen[0]
        folder = home / head.split("C", 1)[0]
        name = head[: head.index("F")] if "F" in head else Path(head).stem
        out.append(Tracklet(FrameList(str(folder), chosen), int(pid), int(cam) - camera_base, "ground", name))
    return out


@register_dataset("mars")
def build_mars(root: Path, load_train: bool = True) -> ReIDDataset:
    root = require_dir(root, "MARS root")
    info = require_dir(root / "info", "MARS info folder")
    homes = {split: require_dir(root / f"bbox_{split}", f"MARS bbox_{split} folder") for split in ("train", "test")}
    train: list[Tracklet] = []
    raw_pids: tuple[int, ...] = ()
    if load_train:
        rows = read_table(info, "tracks_train_info")
        train = [t for t in table_tracks(rows, read_frame_names(info / "train_name.txt"), homes["train"],
                                       "tracks_train_info")
                 if t.pid >= 0]
        train, raw_pids = relabel(train)
    test = table_tracks(read_table(info, "tracks_test_info"), read_frame_names(info / "test_name.txt"), homes["test"],
                        "tracks_test_info")
    query_rows = read_table(info, "query_IDX").reshape(-1) - 1
    if query_rows.size == 0 or query_rows.min() < 0 or query_rows.max() >= len(test):
        raise FarreidError(f"query_IDX in {info} must list rows 1..{len(test)} of tracks_test_info")
    is_query = np.zeros(len(test), dtype=bool)
    is_query[query_rows] = True
    query = [test[i] for i in query_rows.tolist()]
    gallery = [t for t, q in zip(test, is_query.tolist()) if not q and t.pid != -1]
    for tracklet in (*train, *query, *gallery):
        check_image_header(tracklet.frames[0])
    return ReIDDataset(
        "mars", str(root), TrackletSet("train", train),
        {"test": Protocol("test", TrackletSet("query", query), TrackletSet("gallery", gallery))}, raw_pids,
    )
