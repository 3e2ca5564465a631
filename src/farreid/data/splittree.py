"""Walking a split folder laid out as `<split>/<pid>/<tracklet>/<frames>` (DetReIDX and the `folder` layout).

Labelled splits (train) need integer identity folders. Test splits may be anonymised, as in the challenge release:
identity folders that are all non-integer, or tracklet folders directly under the split (`query/<tracklet>/`);
their tracklets load with pid -1 so rankings can still be written. A split mixing both forms is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from farreid.data.scan import check_image_header, list_entries, list_frames, parse_pid, require_dir
from farreid.data.tracklet import FrameList, Tracklet
from farreid.errors import FarreidError


@dataclass(frozen=True)
class TrackletInfo:
    """What a layout knows about a tracklet besides its pid: camera, platform and capture metadata."""

    platform: str
    camid: int
    altitude: float | None = None
    distance: float | None = None
    pitch: float | None = None
    session: int | None = None


# (tracklet folder, frame names in order, tracklet name) -> TrackletInfo
Describe = Callable[[Path, list[str], str], TrackletInfo]


def tracklet_record(
    folder: Path, files: list[str] | None, pid: int, name: str, describe: Describe, check_first: bool
) -> Tracklet:
    """One tracklet folder as a `Tracklet` (`files`: its listing, or None to list it)."""
    names = list_frames(folder, files)
    if check_first:
        check_image_header(folder / names[0])
    info = describe(folder, names, name)
    return Tracklet(
        FrameList(str(folder), names), pid, info.camid, info.platform, name,
        info.altitude, info.distance, info.pitch, info.session,
    )


def load_split(
    folder: str | Path,
    labelled: bool,
    describe: Describe,
    check_first: bool = True,
    qualified_names: bool = False,
) -> tuple[list[Tracklet], bool]:
    """Tracklets of one split folder, and whether its identities are known.

    `check_first` reads the header of each tracklet's first frame; `qualified_names` names tracklets
    `<pid folder>/<tracklet folder>` instead of the tracklet folder name alone.
    """
    folder = require_dir(folder, "split folder")
    children, stray = list_entries(folder)
    if stray:
        raise FarreidError(f"file {folder / stray[0]} in a split folder; expected <pid>/<tracklet>/ folders")
    if not children:
        raise FarreidError(f"split folder {folder} is empty")
    listings = {name: list_entries(folder / name) for name in children}
    for name, (dirs, files) in listings.items():
        if dirs and files:
            raise FarreidError(f"{folder / name} holds both frames and folders; expected <pid>/<tracklet>/ or <tracklet>/")
        if not dirs and not files:
            raise FarreidError(f"empty folder {folder / name} (no tracklets or frames)")
    flat = [n for n in children if listings[n][1]]
    if flat:
        if labelled:
            raise FarreidError(f"frames directly in {folder / flat[0]}; labelled splits need <pid>/<tracklet>/ folders")
        if len(flat) != len(children):
            other = next(n for n in children if n not in flat)
            raise FarreidError(f"{folder} mixes tracklet folders ({flat[0]}) and identity folders ({other})")
        return [tracklet_record(folder / n, listings[n][1], -1, n, describe, check_first) for n in children], False
    numeric = [n for n in children if n.lstrip("-").isdigit()]
    anonymised = not labelled and not numeric
    if not anonymised and len(numeric) != len(children):
        parse_pid(next(n for n in children if n not in numeric), folder)
    tracklets: list[Tracklet] = []
    for pid_name in children:
        pid = -1 if anonymised else int(pid_name)
        for name in listings[pid_name][0]:
            subdirs, files = list_entries(folder / pid_name / name)
            if subdirs:
                raise FarreidError(f"tracklet folder {folder / pid_name / name} contains sub-folders ({subdirs[0]})")
            shown = f"{pid_name}/{name}" if qualified_names else name
            tracklets.append(tracklet_record(folder / pid_name / name, files, pid, shown, describe, check_first))
    return tracklets, not anonymised
