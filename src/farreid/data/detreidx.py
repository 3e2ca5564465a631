"""DetReIDX as packaged for the VReID-XFD challenge.

    ROOT/train/<pid>/<tracklet>/*.jpg
    ROOT/case1_aerial_to_ground/{query,gallery}/<pid>/<tracklet>/*.jpg   A2G: aerial query, ground gallery
    ROOT/case2_ground_to_aerial/{query,gallery}/...                      G2A: ground query, aerial gallery
    ROOT/case3_aerial_to_aerial/{query,gallery}/...                      A2A: aerial query, aerial gallery

Platform and metadata come from the first frame's file name (fields split on "_"):
- ground: fewer than 8 fields, or the indoor form `PID_Gender_Age_Height_Weight_Ethnicity_Angle_View[_frame]`
  whose 8th field is a view letter (F/L/R/B); camid 0.
- aerial: `PID_DD_MM_YYYY_HH_MM_DroneHeight_Distance_Angle_Location_..._SessionID[_frame]`: altitude = field 6,
  horizontal distance = field 7, pitch = field 8, session = the last field of the form `S<k>`; camid = session
  (1 or 2), so that the camera junk rule (`farreid.eval.ranking.JunkRule`) makes A2A cross-session, as the
  reference evaluation does.
Train pids are relabelled 0..N-1 (sorted by raw pid); query/gallery keep raw pids. A test folder whose identity
folders are not integers, or that holds tracklet folders directly (`query/<tracklet>/*.jpg`), is anonymised:
its tracklets load with pid -1 so rankings can still be written.
"""

from __future__ import annotations

import re
from pathlib import Path

from farreid.data.registry import register_dataset, select_protocols
from farreid.data.scan import require_dir
from farreid.data.splittree import TrackletInfo, load_split
from farreid.data.tracklet import Protocol, ReIDDataset, TrackletSet, relabel
from farreid.errors import FarreidError

CASES = {
    "A2G": "case1_aerial_to_ground",
    "G2A": "case2_ground_to_aerial",
    "A2A": "case3_aerial_to_aerial",
}
GROUND_VIEWS = {"F", "L", "R", "B"}
_SESSION = re.compile(r"[Ss](\d+)")


def parse_frame_name(path: str | Path) -> TrackletInfo:
    """Platform, camera and capture metadata of a DetReIDX frame from its file name (see the module doc)."""
    stem = Path(path).stem
    fields = stem.split("_")
    if len(fields) < 8 or fields[7].upper() in GROUND_VIEWS:
        return TrackletInfo("ground", 0)
    try:
        altitude, distance, pitch = (float(f) for f in fields[6:9])
    except ValueError:
        raise FarreidError(
            f"cannot read drone height/distance/angle (fields 7-9) from aerial frame name {path}; expected "
            "PID_DD_MM_YYYY_HH_MM_DroneHeight_Distance_Angle_..._SessionID"
        ) from None
    session = next((int(m.group(1)) for f in reversed(fields[9:]) if (m := _SESSION.fullmatch(f))), None)
    if session is None:
        raise FarreidError(f"no session field (S1, S2, ...) in aerial frame name {path}")
    return TrackletInfo("aerial", session, altitude, distance, pitch, session)


def _describe(folder: Path, frame_names: list[str], name: str) -> TrackletInfo:
    return parse_frame_name(frame_names[0])


@register_dataset("detreidx")
def build_detreidx(root: Path, protocol: str = "all", load_train: bool = True) -> ReIDDataset:
    """Index a DetReIDX / VReID-XFD tree: `train/` (unless `load_train=False`) and the cases of `protocol`
    (`all`, `A2G`, `G2A`, `A2A`, or several comma-separated)."""
    root = require_dir(root, "DetReIDX root")
    names = select_protocols(protocol, list(CASES), "DetReIDX")
    if load_train:  # every folder exists before the long walk starts
        require_dir(root / "train", "train split folder")
    for name in names:
        for part in ("query", "gallery"):
            require_dir(root / CASES[name] / part, f"{name} {part} folder")
    train, raw_pids = [], ()
    if load_train:
        train, _ = load_split(root / "train", True, _describe)
        train, raw_pids = relabel(train)
    protocols = {}
    for name in names:
        query, _ = load_split(root / CASES[name] / "query", False, _describe)
        gallery, _ = load_split(root / CASES[name] / "gallery", False, _describe)
        protocols[name] = Protocol(name, TrackletSet("query", query), TrackletSet("gallery", gallery))
    return ReIDDataset("detreidx", str(root), TrackletSet("train", train), protocols, raw_pids)
