"""DukeMTMC-VideoReID in its published layout.

    ROOT/{train,query,gallery}/<pid4>/<tracklet4>/<frame>.jpg
        frame names 0001_C6_F0099_X30823.jpg (current release) or 0001C6F0099X30823.jpg (first release)

ROOT may also be the folder the zip unpacks into (holding `DukeMTMC-VideoReID/`) or torchreid's parent folder
(`ROOT/dukemtmc-vidreid/DukeMTMC-VideoReID/`). The camera
is the number after the first `C` of a tracklet's first frame name (1..8, stored 0-based as torchreid does);
everything is ground. Tracklet folders restart at 0001 inside every identity, so tracklets are named
`<pid>/<tracklet>`. Protocol `test`: query = `query/`, gallery = `gallery/` (which also holds the distractor
identities); train pids are relabelled 0..N-1.
"""

from __future__ import annotations

import re
from pathlib import Path

from farreid.data.registry import register_dataset
from farreid.data.scan import require_dir, require_split_dir
from farreid.data.splittree import TrackletInfo, load_split
from farreid.data.tracklet import Protocol, ReIDDataset, TrackletSet, relabel
from farreid.errors import FarreidError

NESTED = ("DukeMTMC-VideoReID", "dukemtmc-vidreid/DukeMTMC-VideoReID")
_CAMERA = re.compile(r"C(\d+)")


def _describe(folder: Path, frame_names: list[str], name: str) -> TrackletInfo:
    match = _CAMERA.search(frame_names[0])
    if match is None or int(match.group(1)) < 1:
        raise FarreidError(f"no camera field (C1..C8) in DukeMTMC-VideoReID frame name {folder / frame_names[0]}")
    return TrackletInfo("ground", int(match.group(1)) - 1)


@register_dataset("dukevideo")
def build_dukevideo(root: Path, load_train: bool = True) -> ReIDDataset:
    root = require_dir(root, "DukeMTMC-VideoReID root")
    if not (root / "query").is_dir():
        root = next((root / inner for inner in NESTED if (root / inner).is_dir()), root)
    splits = (["train"] if load_train else []) + ["query", "gallery"]
    for split in splits:  # every folder exists before the long walk starts
        require_split_dir(root / split, f"DukeMTMC-VideoReID {split} folder")
    loaded = {s: load_split(root / s, True, _describe, qualified_names=True)[0] for s in splits}
    train, raw_pids = relabel(loaded.get("train", []))
    test = Protocol("test", TrackletSet("query", loaded["query"]), TrackletSet("gallery", loaded["gallery"]))
    return ReIDDataset("dukevideo", str(root), TrackletSet("train", train), {"test": test}, raw_pids)
