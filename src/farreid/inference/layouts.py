"""Which tracklets `farreid extract` embeds, and where each split's features go.

- A registered dataset (`dataset="detreidx"`, `"mars"`, ...): each test protocol's query and gallery, written to
  `<out>/<protocol>/query` and `<out>/<protocol>/gallery` (the layout `farreid eval --features` reads), plus
  the train split to `<out>/train` when asked.
- The generic `folder` layout (the default; `farreid data from-mot` writes it): whichever of `train/`,
  `query/`, `gallery/` exist, with the layout's metadata (pattern or `tracklets.csv` sidecar), each to
  `<out>/<split>`; `farreid eval --features <out>` reads query/ and gallery/ there as the protocol `test`.
- A part of such a layout (a split folder, an identity folder, a tracklet folder): the same tracklets with the
  same names, pids (from the `<pid>` folder) and metadata as in the whole layout, written to `<out>` itself.
- Any other folder is one split: `<pid>/<tracklet>/frames`, `<tracklet>/frames`, or a single tracklet's frames,
  written to `<out>` itself, every tracklet with the given camera and platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farreid.data import Tracklet, TrackletSet, build_dataset
from farreid.data.folder import SIDECAR, folder_describe, folder_splits
from farreid.data.folder import SPLITS as FOLDER_SPLITS
from farreid.data.registry import dataset_options
from farreid.data.scan import list_entries, list_frames, require_dir
from farreid.data.splittree import Describe, TrackletInfo, load_split, tracklet_record
from farreid.errors import FarreidError


@dataclass(frozen=True)
class InputSplit:
    name: str  # where the features go, relative to the output folder ("" = the folder itself)
    tracklets: TrackletSet


def _registered(root: Path, dataset: str, protocol: str, train: bool, options: dict[str, Any]) -> list[InputSplit]:
    accepted = dataset_options(dataset)
    kwargs = dict(options)
    if "protocol" in accepted:
        kwargs.setdefault("protocol", protocol)
    if "load_train" in accepted:
        kwargs.setdefault("load_train", train)
    loaded = build_dataset(dataset, root, **kwargs)
    out = [InputSplit("train", loaded.train)] if train and len(loaded.train) else []
    for name, proto in loaded.protocols.items():
        out += [InputSplit(f"{name}/query", proto.query), InputSplit(f"{name}/gallery", proto.gallery)]
    if not out:
        raise FarreidError(f"dataset {dataset!r} at {root} has no test protocol{' and no train split' if train else ''}")
    return out


def _folder_layout(root: Path, train: bool, options: dict[str, Any]) -> list[InputSplit]:
    unknown = sorted(set(options) - {"pattern", "sidecar"})
    if unknown:
        raise FarreidError(f"the folder layout takes the options pattern and sidecar, not {unknown}")
    sets = folder_splits(root, options.get("pattern", ""), options.get("sidecar", ""), train=train)
    return [InputSplit(s.name, s) for s in sets]


def _layout_position(path: Path) -> tuple[Path, int] | None:
    """(split folder, depth below it) when `path` is a split folder of a layout, an identity folder or a
    tracklet folder in one; None for any other folder."""
    for depth, folder in enumerate([path, path.parent, path.parent.parent]):
        if folder.name in FOLDER_SPLITS and folder.parent != folder:
            return folder, depth
    return None


def _within_layout(path: Path, split: Path, depth: int, describe: Describe) -> list[Tracklet]:
    """The tracklets at `path`, `depth` levels below the split folder `split`, named as in the whole split."""
    if depth == 0:
        return load_split(split, False, describe, qualified_names=True)[0]
    subdirs, files = list_entries(path)
    if depth == 1 and subdirs:  # an identity folder
        folders = [(path / d, path.name) for d in subdirs]
    elif depth == 1:  # a tracklet folder directly under the split (anonymised)
        folders = [(path, "")]
    else:
        folders = [(path, path.parent.name)]
    tracklets = []
    for folder, pid_name in folders:
        pid = int(pid_name) if pid_name.isdigit() else -1
        name = f"{pid_name}/{folder.name}" if pid_name else folder.name
        tracklets.append(tracklet_record(folder, None, pid, name, describe, check_first=True))
    return tracklets


def _part_of_layout(root: Path, camid: int, platform: str, options: dict[str, Any]) -> list[InputSplit] | None:
    position = _layout_position(root.resolve())
    if position is None:
        return None
    split, depth = position
    if depth == 2 and list_entries(root)[0]:
        return None  # not a tracklet folder (it holds folders): an ordinary folder that sits below a split name
    layout = split.parent
    if options or (layout / SIDECAR).is_file():
        describe = folder_describe(layout, options.get("pattern", ""), options.get("sidecar", ""))
    else:
        describe = _fixed(camid, platform)
    return [InputSplit("", TrackletSet(root.name, _within_layout(root.resolve(), split, depth, describe)))]


def _fixed(camid: int, platform: str) -> Describe:
    def describe(folder: Path, frames: list[str], name: str) -> TrackletInfo:
        return TrackletInfo(platform, camid)

    return describe


def _plain_folder(root: Path, camid: int, platform: str) -> list[InputSplit]:
    dirs, files = list_entries(root)
    if files and not dirs:  # the frames of one tracklet
        record = Tracklet([str(root / n) for n in list_frames(root, files)], -1, camid, platform, root.name)
        return [InputSplit("", TrackletSet(root.name, [record]))]

    tracklets, _ = load_split(root, False, _fixed(camid, platform), qualified_names=True)
    return [InputSplit("", TrackletSet(root.name, tracklets))]


def input_splits(
    root: str | Path,
    dataset: str | None = None,
    *,
    protocol: str = "all",
    train: bool = False,
    options: dict[str, Any] | None = None,
    camid: int = 0,
    platform: str = "ground",
) -> list[InputSplit]:
    """The splits to embed under `root` (see the module doc); `camid` / `platform` label tracklets that have no
    metadata of their own."""
    root = require_dir(root, "input folder")
    options = dict(options or {})
    if dataset not in (None, "folder"):
        return _registered(root, dataset, protocol, train, options)
    if dataset == "folder" or any((root / s).is_dir() for s in FOLDER_SPLITS):
        return _folder_layout(root, train, options)
    part = _part_of_layout(root, camid, platform, options)
    if part is not None:
        return part
    if options:
        raise FarreidError(f"options {sorted(options)} need --dataset (a plain folder of tracklets takes none)")
    return _plain_folder(root, camid, platform)
