"""LS-VID in its published layout.

    ROOT/list_sequence/list_seq_{train,test}.txt     lines `<path prefix> <pid>`, prefix relative to ROOT
    ROOT/test/data/info_test.mat                     key `query`: 1-based rows of list_seq_test used as queries
    (or ROOT/info/list_sequence/... with ROOT/info/data/info_test.mat, the arrangement TF-CLIP reads)

A tracklet's frames are the image files in the prefix's folder whose names start with the prefix's last part
(what the reference loaders glob as `<prefix>*`), in name order. The camera is the third `_`-field of the first
frame name (1..15, stored 0-based); everything is ground. Protocol `test`: query = the `info_test` rows,
gallery = the other test sequences; rows with pid -1 are left out, as the reference loaders do.
`info_test.mat` is MATLAB v7.3 (HDF5): it is read with h5py when installed; otherwise convert it once to
`info_test.csv` beside it (one row number a line), which needs nothing.
"""

from __future__ import annotations

import bisect
import os
import re
from pathlib import Path

import numpy as np

from farreid.data.registry import register_dataset
from farreid.data.scan import check_image_header, is_image_name, list_entries, require_dir, require_file
from farreid.data.tracklet import FrameList, Protocol, ReIDDataset, Tracklet, TrackletSet, relabel
from farreid.errors import FarreidError

LAYOUTS = (("list_sequence", "test/data"), ("info/list_sequence", "info/data"))


def _locate(root: Path) -> tuple[Path, Path]:
    for lists, index in LAYOUTS:
        if (root / lists).is_dir():
            return root / lists, root / index
    raise FarreidError(f"missing LS-VID sequence lists: neither {root / LAYOUTS[0][0]} nor {root / LAYOUTS[1][0]} "
                       "is a folder")


def _read_list(path: Path) -> list[tuple[str, int, int]]:
    """(path prefix, pid, line number) of every line of a list_seq file."""
    out = []
    for number, line in enumerate(require_file(path, "LS-VID sequence list").read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise FarreidError(f"line {number} of {path} must be `<path prefix> <pid>`, got {line.strip()!r}")
        out.append((parts[0], int(parts[1]), number))
    if not out:
        raise FarreidError(f"LS-VID sequence list {path} is empty")
    return out


def read_query_rows(index_dir: Path) -> np.ndarray:
    """1-based query rows from `info_test.csv`/`.txt` (numbers) or `info_test.mat` (HDF5, needs h5py)."""
    for suffix in (".csv", ".txt"):
        path = index_dir / f"info_test{suffix}"
        if path.is_file():
            values = [v for v in re.split(r"[,\s]+", path.read_text().strip()) if v]
            try:
                return np.array([int(float(v)) for v in values], dtype=np.int64)
            except ValueError:
                raise FarreidError(f"{path} must hold row numbers only") from None
    mat = require_file(index_dir / "info_test.mat", "LS-VID query index (info_test .mat, .csv or .txt)")
    try:
        import h5py
    except ImportError:
        raise FarreidError(
            f"reading {mat} (MATLAB v7.3) needs h5py (pip install h5py), or convert it once to info_test.csv "
            "beside it: python -c \"import h5py, numpy as np; np.savetxt('info_test.csv', "
            "h5py.File('info_test.mat', 'r')['query'][0], fmt='%d')\""
        ) from None
    with h5py.File(mat, "r") as fh:
        return np.asarray(fh["query"][0], dtype=np.int64)


class _Folders:
    """Each frame folder listed once, however many sequences share it."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def frames(self, root: Path, prefix: str, where: str) -> FrameList:
        full = root / prefix
        folder = str(full.parent)
        if folder not in self._files:
            require_dir(folder, f"LS-VID frame folder ({where})")
            self._files[folder] = [n for n in list_entries(folder)[1] if is_image_name(n)]
        files = self._files[folder]  # sorted: the names with this prefix are one run
        start = stop = bisect.bisect_left(files, full.name)
        while stop < len(files) and files[stop].startswith(full.name):
            stop += 1
        names = files[start:stop]
        if not names:
            raise FarreidError(f"LS-VID sequence {prefix} ({where}) matches no frame in {folder}")
        return FrameList(folder, names)


def _tracklets(entries: list[tuple[str, int, int]], root: Path, source: Path, folders: _Folders) -> list[Tracklet]:
    out = []
    for prefix, pid, number in entries:
        if pid == -1:
            continue
        frames = folders.frames(root, prefix, f"line {number} of {source.name}")
        fields = os.path.basename(frames.names()[0]).split("_")
        if len(fields) < 4 or not fields[2].isdigit() or int(fields[2]) < 1:
            raise FarreidError(f"no camera number (third `_`-field) in LS-VID frame name {frames[0]}")
        out.append(Tracklet(frames, pid, int(fields[2]) - 1, "ground", prefix))
    return out


@register_dataset("lsvid")
def build_lsvid(root: Path, load_train: bool = True) -> ReIDDataset:
    root = require_dir(root, "LS-VID root")
    lists, index_dir = _locate(root)
    train_list = require_file(lists / "list_seq_train.txt", "LS-VID train list") if load_train else None
    test_list = lists / "list_seq_test.txt"
    test_entries = _read_list(test_list)
    query_rows = read_query_rows(index_dir) - 1
    if query_rows.size == 0 or query_rows.min() < 0 or query_rows.max() >= len(test_entries):
        raise FarreidError(f"info_test in {index_dir} must list rows 1..{len(test_entries)} of {test_list}")
    train_entries = _read_list(train_list) if train_list is not None else []
    folders = _Folders()
    train, raw_pids = relabel(_tracklets(train_entries, root, lists / "list_seq_train.txt", folders))
    is_query = np.zeros(len(test_entries), dtype=bool)
    is_query[query_rows] = True
    query = _tracklets([test_entries[i] for i in query_rows.tolist()], root, test_list, folders)
    gallery = _tracklets([e for e, q in zip(test_entries, is_query.tolist()) if not q], root, test_list, folders)
    for tracklet in (*train, *query, *gallery):
        check_image_header(tracklet.frames[0])
    test = Protocol("test", TrackletSet("query", query), TrackletSet("gallery", gallery))
    return ReIDDataset("lsvid", str(root), TrackletSet("train", train), {"test": test}, raw_pids)
