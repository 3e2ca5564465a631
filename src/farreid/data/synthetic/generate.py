"""Writing a synthetic DetReIDX-layout data set: identities, tracklets, file names, the train/test folders.

Every identity gets ground tracklets (indoor, sharp, large) and aerial tracklets in two sessions, each at a
capture point of the real DetReIDX protocol (drone height, horizontal distance, pitch 30/60/90 degrees).
Session 2 has other lighting, and some identities change their top and leave their backpack (as people do
between real capture days). Train and test identities are disjoint; the test identities fill
case1 (A2G: aerial query, ground gallery), case2 (G2A: ground query, aerial gallery) and
case3 (A2A: session-1 aerial query, session-2 aerial gallery). Everything depends only on the seed.

With `stress` > 0 the tracklets also carry the failures of real far-distance footage, the ones temporal
attention pooling exists to suppress: in each tracklet a random share of frames (up to `stress`) has the box
slid off the person, a passer-by in front, or motion blur. Which frame has which fault is saved in
`synthetic.json` ("faults"), so a report can set attention weights beside the truth.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from farreid.data.detreidx import CASES
from farreid.data.synthetic.appearance import Appearance, sample_appearance
from farreid.data.synthetic.render import CLEAN, VIEWS, FrameFault, camera_look, render_aerial, render_ground
from farreid.errors import FarreidError
from farreid.utils.io import atomic_write_json, check_output, clear_own_outputs
from farreid.utils.log import progress

MARKER = "synthetic.json"
# Capture points of the DetReIDX protocol: (drone height m, horizontal distance m, pitch degrees).
CAPTURE_POINTS = (
    (5.8, 10, 30), (11.5, 20, 30), (17.3, 30, 30), (23.1, 40, 30), (40, 80, 30), (60, 120, 30),
    (15, 10, 60), (30, 20, 60), (45, 30, 60), (60, 40, 60), (75, 80, 60), (90, 120, 60),
    (10, 0, 90), (20, 0, 90), (30, 0, 90), (40, 0, 90), (80, 0, 90), (120, 0, 90),
)
SESSIONS = {  # per-channel gain, haze, (day, month, year, hour)
    1: ((1.06, 1.0, 0.9), 0.0, (23, 10, 2024, 9)),
    2: ((0.82, 0.9, 1.04), 0.15, (6, 11, 2024, 15)),
}
GROUND_SIZE = (64, 128)  # (W, H) of an indoor ground-camera crop
WALLS = ((200, 195, 185), (170, 175, 180), (215, 210, 190), (150, 150, 160))
FLOORS = ((120, 110, 100), (90, 90, 95), (140, 125, 100))
TERRAIN = ((95, 120, 70), (110, 110, 110), (150, 140, 120), (80, 100, 60))


@dataclass(frozen=True)
class SyntheticTracklet:
    pid: int
    tid: int
    platform: str
    session: int  # 0 = ground
    view: str
    point: tuple[float, float, float] | None  # capture point of aerial tracklets

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_{self.tid:04d}"


def person_height_px(altitude: float, distance: float) -> float:
    """Apparent person height in pixels at a slant range: 40 px at the closest capture point, at least 10."""
    slant = math.hypot(altitude, distance)
    return float(np.clip(40.0 * (11.6 / slant) ** 0.5, 10.0, 40.0))


def frame_name(t: SyntheticTracklet, app: Appearance, frame: int) -> str:
    if t.platform == "ground":
        view = {"front": "F", "back": "B", "side": "L"}[t.view]
        return f"{t.pid:04d}_{app.gender}_{app.age}_{app.height_cm}_{app.weight_kg}_0_0_{view}_{frame:04d}.jpg"
    day, month, year, hour = SESSIONS[t.session][2]
    alt, dist, pitch = t.point  # type: ignore[misc]
    bio = "_".join(str(v) for v in app.soft_biometrics())
    return (f"{t.pid:04d}_{day:02d}_{month:02d}_{year}_{hour:02d}_{t.tid % 60:02d}_{alt:g}_{dist:g}_{pitch:g}_"
            f"{1 + t.tid % 3}_{bio}_1_{100 + t.tid % 50}_S{t.session}_{frame:04d}.jpg")


FAULT_KINDS = ("drift", "occlusion", "motion_blur")


def plan_faults(t: SyntheticTracklet, frames: int, seed: int, stress: float) -> list[FrameFault]:
    """Per frame: clean, or one fault. A tracklet's share of faulty frames is drawn from [0, stress]; its own
    random stream, so the clean frames render exactly as without stress."""
    if stress <= 0:
        return [CLEAN] * frames
    rng = np.random.default_rng([seed, t.pid, t.tid, 3])
    share = float(rng.uniform(0.0, stress))
    out = []
    for _ in range(frames):
        if rng.random() >= share:
            out.append(CLEAN)
            continue
        kind = FAULT_KINDS[int(rng.integers(len(FAULT_KINDS)))]
        if kind == "drift":
            sign = 1.0 if rng.random() < 0.5 else -1.0
            out.append(FrameFault(kind, shift=(sign * float(rng.uniform(0.3, 0.6)), float(rng.uniform(-0.1, 0.25)))))
        elif kind == "occlusion":
            sign = 1.0 if rng.random() < 0.5 else -1.0
            out.append(FrameFault(kind, occluder=sample_appearance(rng), occluder_offset=sign * float(rng.uniform(0.06, 0.3))))
        else:
            out.append(FrameFault(kind, blur=float(rng.uniform(0.12, 0.25)), blur_angle=float(rng.uniform(0, 180))))
    return out


def render_tracklet(
    t: SyntheticTracklet, app: Appearance, frames: int, seed: int, faults: list[FrameFault] | None = None
) -> list[tuple[str, bytes]]:
    """(file name, JPEG bytes) of every frame; deterministic in (seed, pid, tid). `faults` (one a frame,
    from `plan_faults`) puts the far-distance failures into the frames."""
    faults = faults or [CLEAN] * frames
    rng = np.random.default_rng([seed, t.pid, t.tid])
    phase0, step = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.55, 0.85))
    out = []
    if t.platform == "ground":
        wall, floor = WALLS[int(rng.integers(len(WALLS)))], FLOORS[int(rng.integers(len(FLOORS)))]
        for f in range(frames):
            image = render_ground(app, GROUND_SIZE, phase0 + f * step, t.view, wall, floor, rng, faults[f])
            image = camera_look(image, (1.0, 1.0, 1.0), 0.0, 2.0, rng)
            out.append((frame_name(t, app, f), _jpeg(image, 92)))
        return out
    look = app.for_session(t.session, changes=_changes(app, seed, t.pid))
    gain, haze, _ = SESSIONS[t.session]
    alt, dist, pitch = t.point  # type: ignore[misc]
    px = person_height_px(alt, dist) * float(rng.uniform(0.9, 1.1))
    terrain = TERRAIN[int(rng.integers(len(TERRAIN)))]
    blur = float(rng.uniform(0.2, 0.4)) + 0.3 * min(1.0, math.hypot(alt, dist) / 120.0)
    quality = int(rng.integers(55, 81))
    for f in range(frames):
        image = render_aerial(look, px, pitch, phase0 + f * step, t.view, terrain, rng, faults[f])
        image = camera_look(image, gain, blur, float(rng.uniform(3.0, 7.0)), rng, haze)
        out.append((frame_name(t, look, f), _jpeg(image, quality)))
    return out


def _jpeg(image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _changes(app: Appearance, seed: int, pid: int, probability: float = 0.35) -> bool:
    return bool(np.random.default_rng([seed, pid, 7]).random() < probability)


def plan_tracklets(pids: list[int], seed: int, ground_tracklets: int, aerial_tracklets: int) -> list[SyntheticTracklet]:
    """Every identity's tracklets: ground views, then `aerial_tracklets` per session at random capture points."""
    out, tid = [], 1
    for pid in pids:
        rng = np.random.default_rng([seed, pid, 1])
        views = [VIEWS[(i + int(rng.integers(3))) % 3] for i in range(ground_tracklets)]
        for view in views:
            out.append(SyntheticTracklet(pid, tid, "ground", 0, view, None))
            tid += 1
        for session in (1, 2):
            points = rng.choice(len(CAPTURE_POINTS), aerial_tracklets, replace=False)
            for p in points:
                view = VIEWS[int(rng.integers(3))]
                out.append(SyntheticTracklet(pid, tid, "aerial", session, view, CAPTURE_POINTS[int(p)]))
                tid += 1
    return out


def destinations(t: SyntheticTracklet, is_train: bool) -> list[tuple[str, ...]]:
    """Split folders a tracklet is written to (test tracklets appear in several cases, as in the challenge)."""
    if is_train:
        return [("train",)]
    if t.platform == "ground":
        return [(CASES["A2G"], "gallery"), (CASES["G2A"], "query")]
    a2a = (CASES["A2A"], "query" if t.session == 1 else "gallery")
    return [(CASES["A2G"], "query"), (CASES["G2A"], "gallery"), a2a]


def _prepare(out: Path, overwrite: bool) -> None:
    """An empty folder, or (with `overwrite`) one holding only an earlier synthetic set, which is removed."""
    check_output(out, "dir")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise FarreidError(f"{out} exists and is not empty (and holds no {MARKER}); choose an empty folder")
        if not overwrite:
            raise FarreidError(f"{out} already holds a synthetic data set; pass overwrite=True (--overwrite) to replace it")
        clear_own_outputs(out, ("train", *CASES.values()), "data synth", marker=MARKER)
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out_dir: str | Path,
    num_ids: int = 60,
    seed: int = 0,
    frames: int = 12,
    ground_tracklets: int = 2,
    aerial_tracklets: int = 2,
    train_fraction: float = 0.5,
    anonymised: bool = False,
    overwrite: bool = False,
    stress: float = 0.0,
) -> dict:
    """Write the data set to `out_dir`; returns (and saves as `synthetic.json`) a summary with the parameters.

    `aerial_tracklets` is per session; `stress` in [0, 1] is the largest share of faulty frames a tracklet gets. `anonymised=True` writes test folders without identity folders
    (`query/<tracklet>/`), like the challenge's test release; the labels stay in `synthetic.json`.
    """
    if num_ids < 4 or frames < 1 or ground_tracklets < 1 or aerial_tracklets < 1:
        raise FarreidError("need num_ids >= 4, frames >= 1, ground_tracklets >= 1 and aerial_tracklets >= 1")
    if not 0.0 <= stress <= 1.0:
        raise FarreidError(f"stress is the largest share of faulty frames a tracklet gets, in [0, 1]; got {stress}")
    num_train = int(round(num_ids * train_fraction))
    if not 2 <= num_train <= num_ids - 2:
        raise FarreidError(f"train_fraction={train_fraction} leaves {num_train} of {num_ids} identities for training")
    params = dict(num_ids=num_ids, seed=seed, frames=frames, ground_tracklets=ground_tracklets,
                  aerial_tracklets=aerial_tracklets, train_fraction=train_fraction, anonymised=anonymised)
    if stress > 0:  # absent when off, so that sets written before stress existed keep their parameters
        params["stress"] = stress
    out = Path(out_dir)
    _prepare(out, overwrite)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    pids = sorted(int(p) for p in rng.choice(np.arange(1, 10 * num_ids), num_ids, replace=False))
    train_pids = set(int(p) for p in rng.permutation(pids)[:num_train])
    looks = {pid: sample_appearance(np.random.default_rng([seed, pid, 0])) for pid in pids}
    counts: dict[str, int] = {}
    labels: dict[str, int] = {}
    faults: dict[str, list[str]] = {}
    plan = plan_tracklets(pids, seed, ground_tracklets, aerial_tracklets)
    for t in progress(plan, desc="synthesise tracklets"):
        frame_faults = plan_faults(t, frames, seed, stress)
        if any(f.kind != "clean" for f in frame_faults):
            faults[t.name] = [f.kind for f in frame_faults]
        rendered = render_tracklet(t, looks[t.pid], frames, seed, frame_faults)
        for split in destinations(t, t.pid in train_pids):
            anon = anonymised and split[0] != "train"
            folder = out.joinpath(*split, *(() if anon else (f"{t.pid:04d}",)), t.name)
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in rendered:
                (folder / name).write_bytes(data)
            key = "/".join(split)
            counts[key] = counts.get(key, 0) + 1
            if anon:
                labels[t.name] = t.pid
    summary = {
        "params": params,
        "train_ids": len(train_pids),
        "test_ids": num_ids - len(train_pids),
        "tracklets": counts,
        "frames_rendered": len(plan) * frames,
        "seconds": round(time.perf_counter() - started, 2),
        "appearance": {str(pid): asdict(looks[pid]) for pid in pids},
    }
    if labels:
        summary["test_labels"] = labels
    if stress > 0:
        summary["faults"] = faults
    atomic_write_json(out / MARKER, summary)
    return summary
