"""Two-camera person-folder benchmarks: iLIDS-VID and PRID2011, in their published layouts.

    iLIDS-VID   ROOT/i-LIDS-VID/sequences/cam{1,2}/person001/*.png        split file ROOT/splits.json
    PRID2011    ROOT/prid_2011/multi_shot/cam_{a,b}/person_0001/*.png     split file ROOT/splits_prid2011.json

ROOT may also be the parent folder torchreid uses (`ROOT/ilids-vid/...`, `ROOT/prid2011/...`).
A split file is a JSON list of {"train": [person folders], "test": [person folders]} (as torchreid writes it);
`split_id` picks one. Without a split file, a split is drawn from `seed`: half of the people seen by both cameras
train, half test (PRID2011: the first 200 people, who appear in both cameras). Test protocol: query = camera 1
(cam_a) tracklets of the test people, gallery = camera 2 (cam_b). Camera ids 0 and 1; everything is ground.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from farreid.data.registry import register_dataset
from farreid.data.scan import check_image_header, list_entries, list_frames, require_dir
from farreid.data.tracklet import FrameList, Protocol, ReIDDataset, Tracklet, TrackletSet, relabel
from farreid.errors import FarreidError


def _locate(root: Path, inner: str, parent_name: str) -> Path:
    """The dataset folder: ROOT itself, or ROOT/<parent_name> (the torchreid layout)."""
    root = require_dir(root, "dataset root")
    if (root / inner).is_dir() or not (root / parent_name / inner).is_dir():
        return root
    return root / parent_name


def _person_pid(name: str, parent: Path) -> int:
    digits = re.findall(r"\d+", name)
    if not digits:
        raise FarreidError(f"person folder {parent / name} has no number in its name")
    return int(digits[-1])


def _load_split(split_file: Path, split_id: int, people: list[str], seed: int) -> tuple[list[str], list[str]]:
    if split_file.is_file():
        try:
            splits = json.loads(split_file.read_text())
            split = splits[split_id]
            train, test = list(split["train"]), list(split["test"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FarreidError(f"{split_file} must be a JSON list of {{'train': [...], 'test': [...]}}: {exc}") from None
        except IndexError:
            raise FarreidError(f"split_id {split_id} out of range: {split_file} holds {len(splits)} splits") from None
        return train, test
    order = np.random.default_rng([seed, split_id]).permutation(len(people))
    half = len(people) // 2
    return sorted(people[i] for i in order[:half]), sorted(people[i] for i in order[half:])


def _tracklet(cam_dir: Path, person: str, camid: int, pid: int) -> Tracklet:
    folder = require_dir(cam_dir / person, f"person folder of camera {cam_dir.name}")
    names = list_frames(folder)
    check_image_header(folder / names[0])
    return Tracklet(FrameList(str(folder), names), pid, camid, "ground", f"{cam_dir.name}/{person}")


def _build(name: str, base: Path, cams: tuple[Path, Path], split_file: Path, split_id: int, seed: int,
           max_people: int | None, load_train: bool) -> ReIDDataset:
    for cam in cams:
        require_dir(cam, f"{name} camera folder")
    in_both = sorted(set(list_entries(cams[0])[0]) & set(list_entries(cams[1])[0]))
    people = in_both[:max_people] if max_people else in_both
    if not people:
        raise FarreidError(f"no person folder appears in both {cams[0]} and {cams[1]}")
    train_people, test_people = _load_split(split_file, split_id, people, seed)
    train: list[Tracklet] = []
    raw: tuple[int, ...] = ()
    if load_train:
        train = [_tracklet(cam, p, c, _person_pid(p, cam)) for p in train_people for c, cam in enumerate(cams)]
        train, raw = relabel(train)
    query = [_tracklet(cams[0], p, 0, _person_pid(p, cams[0])) for p in test_people]
    gallery = [_tracklet(cams[1], p, 1, _person_pid(p, cams[1])) for p in test_people]
    protocols = {"test": Protocol("test", TrackletSet("query", query), TrackletSet("gallery", gallery))}
    return ReIDDataset(name, str(base), TrackletSet("train", train), protocols, raw)


@register_dataset("ilidsvid")
def build_ilidsvid(root: Path, split_id: int = 0, seed: int = 0, load_train: bool = True) -> ReIDDataset:
    base = _locate(root, "i-LIDS-VID", "ilids-vid")
    seq = require_dir(base / "i-LIDS-VID" / "sequences", "iLIDS-VID sequences folder")
    return _build("ilidsvid", base, (seq / "cam1", seq / "cam2"), base / "splits.json", split_id, seed, None,
                  load_train)


@register_dataset("prid2011")
def build_prid2011(root: Path, split_id: int = 0, seed: int = 0, load_train: bool = True) -> ReIDDataset:
    base = _locate(root, "prid_2011", "prid2011")
    shots = require_dir(base / "prid_2011" / "multi_shot", "PRID2011 multi_shot folder")
    return _build("prid2011", base, (shots / "cam_a", shots / "cam_b"), base / "splits_prid2011.json", split_id,
                  seed, 200, load_train)
