"""Which tracklets `farreid extract` embeds, and where each split's features go.

- A registered dataset (`dataset="detreidx"`, `"mars"`, ...): each test protocol's query and gallery, written to
  `<out>/<protocol>/query` and `<out>/<protocol>/gallery` (the layout `farreid eval --features` reads), plus
  the train split to `<out>/train` when asked.
- The generic `folder` layout (the default; `farreid data from-mot` writes it): whichever of `train/`,
  `query/`, `gallery/` exist, with the layout's metadata (pattern or `tracklets.csv` sidecar). Query and gallery
  together become the protocol `test` (`<out>/test/{query,gallery}`); a lone split goes to `<out>/<split>`.
- Any other folder is one split: `<pid>/<tracklet>/frames`, `<tracklet>/frames`, or a single tracklet's frames,
  written to `<out>` itself, every tracklet with the given camera and platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farreid.data import Tracklet, TrackletSet, build_dataset
from farreid.data.folder import folder_describe
from farreid.data.registry import dataset_options
from farreid.data.scan import list_entries, list_frames, require_dir
from farreid.data.splittree import TrackletInfo, load_split
from farreid.errors import FarreidError

FOLDER_SPLITS = ("train", "query", "gallery")


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
    describe = folder_describe(root, options.get("pattern", ""), options.get("sidecar", ""))
    present = [s for s in FOLDER_SPLITS if (root / s).is_dir() and (s != "train" or train)]
    if not present:
        if (root / "train").is_dir():
            raise FarreidError(f"{root} has only a train/ split; pass --train to embed it")
        raise FarreidError(f"{root} has none of the folder layout's split folders {', '.join(FOLDER_SPLITS)}")
    sets = {s: TrackletSet(s, load_split(root / s, False, describe, qualified_names=True)[0]) for s in present}
    if "query" in sets and "gallery" in sets:
        names = {"train": "train", "query": "test/query", "gallery": "test/gallery"}
    else:
        names = {s: s for s in present}
    return [InputSplit(names[s], sets[s]) for s in present]


def _plain_folder(root: Path, camid: int, platform: str) -> list[InputSplit]:
    dirs, files = list_entries(root)
    if files and not dirs:  # the frames of one tracklet
        record = Tracklet([str(root / n) for n in list_frames(root, files)], -1, camid, platform, root.name)
        return [InputSplit("", TrackletSet(root.name, [record]))]

    def describe(folder: Path, frames: list[str], name: str) -> TrackletInfo:
        return TrackletInfo(platform, camid)

    tracklets, _ = load_split(root, False, describe, qualified_names=True)
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
    """The splits to embed under `root` (see the module doc); `camid` / `platform` label plain folders."""
    root = require_dir(root, "input folder")
    options = dict(options or {})
    if dataset not in (None, "folder"):
        return _registered(root, dataset, protocol, train, options)
    if dataset == "folder" or any((root / s).is_dir() for s in FOLDER_SPLITS):
        return _folder_layout(root, train, options)
    if options:
        raise FarreidError(f"options {sorted(options)} need --dataset (a plain folder of tracklets takes none)")
    return _plain_folder(root, camid, platform)
