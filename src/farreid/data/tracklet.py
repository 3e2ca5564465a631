"""The one record every dataset produces (`Tracklet`), the split that holds them (`TrackletSet`), test protocols
(`Protocol`: a query and a gallery set) and a loaded dataset (`ReIDDataset`).

A tracklet's frame list is stored compactly (`FrameList`: its folder plus the file names joined in one string) so
that a dataset of millions of frames costs one small object per tracklet, not one string per frame: less memory,
faster indexing, and DataLoader workers that fork without copying millions of reference-counted objects.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from farreid.config.schema import PLATFORMS
from farreid.errors import FarreidError


class FrameList(Sequence[str]):
    """An immutable sequence of frame paths in temporal order, stored as one folder and one joined string."""

    __slots__ = ("folder", "_names", "_count")

    def __init__(self, folder: str, names: Sequence[str]):
        if any("\n" in n for n in names):
            raise FarreidError(f"frame names in {folder} must not contain line breaks")
        self.folder = str(folder)
        self._names = "\n".join(names)
        self._count = len(names)

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> "FrameList":
        """Build from full paths; paths in several folders keep their folders in the names."""
        paths = [str(p) for p in paths]
        folders = {os.path.dirname(p) for p in paths}
        if len(folders) == 1:
            return cls(folders.pop(), [os.path.basename(p) for p in paths])
        return cls("", paths)

    def names(self) -> list[str]:
        return self._names.split("\n") if self._count else []

    def _join(self, name: str) -> str:
        return os.path.join(self.folder, name) if self.folder else name

    def paths(self, indices: Iterable[int] | None = None) -> list[str]:
        """Full paths of all frames, or of the frames at `indices` (one split of the names for all of them)."""
        names = self.names()
        if indices is None:
            return [self._join(n) for n in names]
        return [self._join(names[i]) for i in indices]

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self.paths(range(self._count)[index]))
        if not -self._count <= index < self._count:
            raise IndexError(f"frame index {index} out of range for a tracklet of {self._count} frames")
        return self.paths([index])[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrameList):
            return self.paths() == other.paths()
        if isinstance(other, (tuple, list)):
            return self.paths() == [str(p) for p in other]
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.folder, self._names))

    def __repr__(self) -> str:
        return f"FrameList({self.folder!r}, {self._count} frames)"

    def __getstate__(self):
        return (self.folder, self._names, self._count)

    def __setstate__(self, state) -> None:
        self.folder, self._names, self._count = state


def _as_frames(frames: Sequence[str]) -> FrameList:
    return frames if isinstance(frames, FrameList) else FrameList.from_paths(frames)


@dataclass(frozen=True)
class Tracklet:
    """A person's frame sequence with its labels. `pid` is -1 when unknown (anonymised challenge test data)."""

    frames: Sequence[str]  # frame file paths in temporal order (stored as a FrameList)
    pid: int
    camid: int
    platform: str  # "ground" | "aerial"
    name: str  # tracklet folder name (what the challenge CSV prints)
    altitude: float | None = None  # metres (aerial only)
    distance: float | None = None  # horizontal metres
    pitch: float | None = None  # degrees
    session: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", _as_frames(self.frames))
        if self.platform not in PLATFORMS:
            raise FarreidError(f"tracklet {self.name!r}: platform must be one of {PLATFORMS}, got {self.platform!r}")
        if len(self.frames) == 0:
            raise FarreidError(f"tracklet {self.name!r} has no frames")

    @property
    def platform_code(self) -> int:
        return PLATFORMS.index(self.platform)

    def __len__(self) -> int:
        return len(self.frames)


class TrackletSet(Sequence[Tracklet]):
    """A named, ordered list of tracklets (a split such as train, query or gallery)."""

    def __init__(self, name: str, tracklets: Iterable[Tracklet] = ()):
        self.name = name
        self.tracklets: tuple[Tracklet, ...] = tuple(tracklets)

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return TrackletSet(self.name, self.tracklets[index])
        return self.tracklets[index]

    def __iter__(self) -> Iterator[Tracklet]:
        return iter(self.tracklets)

    def __repr__(self) -> str:
        return f"TrackletSet({self.name!r}, {len(self)} tracklets)"

    @property
    def pids(self) -> list[int]:
        return [t.pid for t in self.tracklets]

    @property
    def camids(self) -> list[int]:
        return [t.camid for t in self.tracklets]

    @property
    def num_pids(self) -> int:
        return len({t.pid for t in self.tracklets if t.pid >= 0})

    @property
    def num_camids(self) -> int:
        return len({t.camid for t in self.tracklets})

    def renamed(self, name: str) -> "TrackletSet":
        return TrackletSet(name, self.tracklets)

    def stats(self) -> dict[str, int | float | str]:
        """Identities, tracklets, frames (total and per platform), cameras, tracklet length range, unlabelled count."""
        lengths = [len(t.frames) for t in self.tracklets]
        out: dict[str, int | float | str] = {
            "split": self.name,
            "ids": self.num_pids,
            "tracklets": len(self.tracklets),
            "frames": sum(lengths),
            "cameras": self.num_camids,
            "unlabelled": sum(1 for t in self.tracklets if t.pid < 0),
            "min_len": min(lengths, default=0),
            "mean_len": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
            "max_len": max(lengths, default=0),
        }
        for platform in PLATFORMS:
            chosen = [t for t in self.tracklets if t.platform == platform]
            out[f"{platform}_ids"] = len({t.pid for t in chosen if t.pid >= 0})
            out[f"{platform}_tracklets"] = len(chosen)
            out[f"{platform}_frames"] = sum(len(t.frames) for t in chosen)
        return out


_COLUMNS = (
    ("split", "split"), ("ids", "ids"), ("tracklets", "tracklets"), ("frames", "frames"), ("cameras", "cameras"),
    ("ground_ids", "ground ids"), ("ground_tracklets", "ground trk"), ("ground_frames", "ground frm"),
    ("aerial_ids", "aerial ids"), ("aerial_tracklets", "aerial trk"), ("aerial_frames", "aerial frm"),
    ("unlabelled", "unlabelled"), ("min_len", "min len"), ("mean_len", "mean len"), ("max_len", "max len"),
)


def stats_rows(sets: Iterable[TrackletSet]) -> tuple[list[str], list[list[str]]]:
    """Column titles and one row of `TrackletSet.stats()` per set (for text and HTML tables)."""
    return [title for _, title in _COLUMNS], [[str(s.stats()[key]) for key, _ in _COLUMNS] for s in sets]


def stats_table(sets: Iterable[TrackletSet]) -> str:
    """A plain-text table with one row of `TrackletSet.stats()` per set."""
    header, rows = stats_rows(sets)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


@dataclass(frozen=True)
class Protocol:
    """A test protocol: rank `gallery` for every tracklet of `query` (A2G, G2A, A2A, or a dataset's `test`)."""

    name: str
    query: TrackletSet
    gallery: TrackletSet


@dataclass
class ReIDDataset:
    """A loaded dataset: the train split (pids relabelled 0..N-1) and its test protocols.

    `train_raw_pids[label]` is the identity's pid as written on disk, for reports and tracing.
    """

    name: str
    root: str
    train: TrackletSet
    protocols: dict[str, Protocol] = field(default_factory=dict)
    train_raw_pids: tuple[int, ...] = ()

    @property
    def num_train_pids(self) -> int:
        return self.train.num_pids

    def protocol(self, name: str) -> Protocol:
        if name not in self.protocols:
            raise FarreidError(
                f"dataset {self.name!r} at {self.root} has no protocol {name!r}; it has {sorted(self.protocols)}"
            )
        return self.protocols[name]

    def splits(self) -> list[TrackletSet]:
        """train, then every protocol's query and gallery, each named for display."""
        out = [self.train] if len(self.train) else []
        for proto in self.protocols.values():
            out.append(proto.query.renamed(f"{proto.name} query"))
            out.append(proto.gallery.renamed(f"{proto.name} gallery"))
        return out

    def summary_table(self) -> str:
        return f"{self.name} at {self.root}\n{stats_table(self.splits())}"


def relabel(tracklets: Iterable[Tracklet]) -> tuple[list[Tracklet], tuple[int, ...]]:
    """Pids -> 0..N-1 in sorted raw-pid order (for training); also returns the raw pid of every label."""
    tracklets = list(tracklets)
    raw = tuple(sorted({t.pid for t in tracklets}))
    label = {pid: i for i, pid in enumerate(raw)}
    return [dataclasses.replace(t, pid=label[t.pid]) for t in tracklets], raw


def nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)
