"""Ground truth for scoring a submission CSV: from a dataset folder, or from a labels file.

A labels file is a CSV with the header `case,split,tracklet,pid,camid`, one row per test tracklet:
`case` is a protocol name (A2G, G2A, A2A, test, ...) or the challenge CSV's case text ("Case 1: Aerial to Ground"),
`split` is `query` or `gallery`, `tracklet` the name the submission prints, `pid` and `camid` integers.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from farreid.errors import FarreidError

LABEL_HEADER = ("case", "split", "tracklet", "pid", "camid")


@dataclass
class LabelSet:
    """Names, identities and cameras of one query or gallery set."""

    names: list[str] = field(default_factory=list)
    pids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    camids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class LabelledProtocol:
    name: str
    query: LabelSet
    gallery: LabelSet


def _label_set(tracklets) -> LabelSet:
    return LabelSet([t.name for t in tracklets], np.array([t.pid for t in tracklets], dtype=np.int64),
                    np.array([t.camid for t in tracklets], dtype=np.int64))


def labels_from_dataset(dataset) -> list[LabelledProtocol]:
    """The test protocols of a loaded `ReIDDataset` (names, pids, camids only)."""
    if not dataset.protocols:
        raise FarreidError(f"dataset {dataset.name!r} at {dataset.root} has no test protocol (query and gallery)")
    return [LabelledProtocol(name, _label_set(p.query), _label_set(p.gallery)) for name, p in dataset.protocols.items()]


def read_labels(path: str | Path) -> list[LabelledProtocol]:
    """Protocols from a labels CSV (see the module doc), in the order their cases first appear."""
    from farreid.eval.submission import CASE_NAMES

    path = Path(path)
    by_text = {v: k for k, v in CASE_NAMES.items()}
    parts: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's byte-order mark is fine
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != LABEL_HEADER:
            raise FarreidError(f"{path}: header must be {','.join(LABEL_HEADER)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(LABEL_HEADER):
                raise FarreidError(f"{path}, line {line}: expected {len(LABEL_HEADER)} fields, got {len(row)}")
            case, split, name, pid, camid = (v.strip() for v in row)
            if split not in ("query", "gallery"):
                raise FarreidError(f"{path}, line {line}: split must be query or gallery, got {split!r}")
            try:
                entry = (name, int(pid), int(camid))
            except ValueError:
                raise FarreidError(
                    f"{path}, line {line}: pid and camid must be integers, got {pid!r}, {camid!r}"
                ) from None
            parts.setdefault(by_text.get(case, case), {"query": [], "gallery": []})[split].append(entry)
    if not parts:
        raise FarreidError(f"labels file {path} has no rows")
    out = []
    for case, splits in parts.items():
        sets = {}
        for split, entries in splits.items():
            if not entries:
                raise FarreidError(f"labels file {path} has no {split} rows for case {case}")
            names = [e[0] for e in entries]
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise FarreidError(f"labels file {path}: {case} {split} tracklet {dup!r} is listed twice")
            sets[split] = LabelSet(names, np.array([e[1] for e in entries], dtype=np.int64),
                                   np.array([e[2] for e in entries], dtype=np.int64))
        out.append(LabelledProtocol(case, sets["query"], sets["gallery"]))
    return out


def load_labels(source: str | Path, data_cfg=None) -> list[LabelledProtocol]:
    """A labels CSV file, or a dataset folder indexed with `data_cfg` (dataset, protocol, options; test side only)."""
    source = Path(source)
    if source.is_file():
        return read_labels(source)
    if not source.is_dir():
        raise FarreidError(f"labels not found: {source} is neither a labels CSV nor a dataset folder")
    if data_cfg is None:
        raise FarreidError(f"{source} is a folder: say which dataset layout it has (data.dataset)")
    from farreid.data import build_dataset_from_config
    from farreid.data.registry import dataset_options

    data_cfg = dataclasses.replace(data_cfg, root=str(source))
    extra = {"load_train": False} if "load_train" in dataset_options(data_cfg.dataset) else {}
    return labels_from_dataset(build_dataset_from_config(data_cfg, **extra))
