"""AG-VPReID (the aerial-ground video ReID challenge set) in its published layout.

    ROOT/train/<pid>/<tracklet>/*.jpg
    ROOT/case1_aerial_to_ground/{query,gallery}/<pid>/<tracklet>/*.jpg   A2G: aerial query, ground gallery
    ROOT/case2_ground_to_aerial/{query,gallery}/...                      G2A: ground query, aerial gallery
    ROOT/attributes/                                                     soft-biometric tables (not read)

The camera is the number after the first `C` of a tracklet's first frame name (as the challenge baseline reads
it). The platform of a train tracklet follows from its camera: 0-1 are CCTV and 2-3 wearable (ground), 4-5 UAV
(aerial), as the dataset's README lists them; in the test cases it is the case's own (case 1: aerial queries,
ground gallery; case 2 the reverse), which holds even where test names were anonymised.
Train pids are relabelled 0..N-1; the challenge's query/gallery folders are anonymised (tracklet folders, or
identity folders that are not integers) and load with pid -1, exactly as in the DetReIDX layout.
"""

from __future__ import annotations

import re
from pathlib import Path

from farreid.data.registry import register_dataset, select_protocols
from farreid.data.scan import require_dir, require_split_dir
from farreid.data.splittree import Describe, TrackletInfo, load_split
from farreid.data.tracklet import Protocol, ReIDDataset, TrackletSet, relabel
from farreid.errors import FarreidError

CASES = {"A2G": "case1_aerial_to_ground", "G2A": "case2_ground_to_aerial"}
CASE_PLATFORMS = {"A2G": {"query": "aerial", "gallery": "ground"}, "G2A": {"query": "ground", "gallery": "aerial"}}
AERIAL_CAMERAS = (4, 5)
_CAMERA = re.compile(r"C(\d+)")


def _describe_as(platform: str | None) -> Describe:
    """Camera from the frame name; platform given (a test case's) or from the camera (train)."""

    def describe(folder: Path, frame_names: list[str], name: str) -> TrackletInfo:
        match = _CAMERA.search(frame_names[0])
        if match is None:
            raise FarreidError(f"no camera field (C<k>) in AG-VPReID frame name {folder / frame_names[0]}")
        camid = int(match.group(1))
        return TrackletInfo(platform or ("aerial" if camid in AERIAL_CAMERAS else "ground"), camid)

    return describe


@register_dataset("agvpreid")
def build_agvpreid(root: Path, protocol: str = "all", load_train: bool = True) -> ReIDDataset:
    """Index an AG-VPReID tree: `train/` (unless `load_train=False`) and the cases of `protocol`
    (`all`, `A2G`, `G2A`, or `A2G,G2A`)."""
    root = require_dir(root, "AG-VPReID root")
    names = select_protocols(protocol, list(CASES), "AG-VPReID")
    if load_train:  # every folder exists before the long walk starts
        require_split_dir(root / "train", "AG-VPReID train folder")
    for name in names:
        for part in ("query", "gallery"):
            require_split_dir(root / CASES[name] / part, f"AG-VPReID {name} {part} folder")
    train, raw_pids = [], ()
    if load_train:
        train, _ = load_split(root / "train", True, _describe_as(None))
        train, raw_pids = relabel(train)
    protocols = {}
    for name in names:
        parts = {part: load_split(root / CASES[name] / part, False, _describe_as(CASE_PLATFORMS[name][part]))[0]
                 for part in ("query", "gallery")}
        protocols[name] = Protocol(name, TrackletSet("query", parts["query"]), TrackletSet("gallery", parts["gallery"]))
    return ReIDDataset("agvpreid", str(root), TrackletSet("train", train), protocols, raw_pids)
