"""G2A-VReID (the ground-to-aerial video set of the VSLA-CLIP paper) in its published, MARS-style layout.

    ROOT/bbox_train/<pid>/<pid>C<cam>T<tracklet>F<frame>.jpg        (pid 4 digits in v1, 5 in v2)
    ROOT/bbox_test/...
    ROOT/info/{train_name.txt, test_name.txt}                        frame names, one a line
    ROOT/info/{tracks_train_info, tracks_test_info}                  rows (first, last, pid, camera), 1-based
    ROOT/info/query_IDX                                              G2A: rows of tracks_test_info used as queries
    ROOT/info/query_IDX_A2G                                          A2G queries (v2 release only)

Each table may be `.mat` (needs scipy), `.csv` or `.txt`, as for MARS. Protocols: `G2A` (query_IDX) and,
when `query_IDX_A2G` exists, `A2G`; each gallery is the test tracks that are not its queries, and junk rows
(pid -1) are left out everywhere, as the VSLA-CLIP loader does. Two cameras (ids 0 and 1); the platform comes
from the layout itself: the camera of the G2A queries is the ground camera, the other one the UAV.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from farreid.data.mars import read_frame_names, read_table, table_tracks
from farreid.data.registry import register_dataset, select_protocols
from farreid.data.scan import check_image_header, require_dir
from farreid.data.tracklet import Protocol, ReIDDataset, Tracklet, TrackletSet, relabel
from farreid.errors import FarreidError

QUERY_TABLES = {"G2A": "query_IDX", "A2G": "query_IDX_A2G"}


def _has_table(info: Path, stem: str) -> bool:
    return any((info / f"{stem}{suffix}").is_file() for suffix in (".csv", ".txt", ".mat"))


def _query_rows(info: Path, stem: str, num_test: int) -> np.ndarray:
    rows = read_table(info, stem).reshape(-1) - 1
    if rows.size == 0 or rows.min() < 0 or rows.max() >= num_test:
        raise FarreidError(f"{stem} in {info} must list rows 1..{num_test} of tracks_test_info")
    return rows


def _with_platform(tracklets: list[Tracklet], ground_camera: int) -> list[Tracklet]:
    return [dataclasses.replace(t, platform="ground" if t.camid == ground_camera else "aerial") for t in tracklets]


@register_dataset("g2avreid")
def build_g2avreid(root: Path, protocol: str = "all", load_train: bool = True) -> ReIDDataset:
    """Index a G2A-VReID tree: the train tracks (unless `load_train=False`) and the protocols of `protocol`
    (`all` = G2A, plus A2G when its query table exists; `G2A`; `A2G`)."""
    root = require_dir(root, "G2A-VReID root")
    info = require_dir(root / "info", "G2A-VReID info folder")
    homes = {s: require_dir(root / f"bbox_{s}", f"G2A-VReID bbox_{s} folder") for s in ("train", "test")}
    present = [n for n, stem in QUERY_TABLES.items() if n == "G2A" or _has_table(info, stem)]
    every = str(protocol).strip() in ("", "all")
    names = present if every else select_protocols(protocol, list(QUERY_TABLES), "G2A-VReID")
    test_rows = read_table(info, "tracks_test_info")
    test = table_tracks(test_rows, read_frame_names(info / "test_name.txt"), homes["test"], "tracks_test_info")
    needed = ["G2A", *(n for n in names if n != "G2A")]  # the G2A queries name the ground camera
    queries = {n: _query_rows(info, QUERY_TABLES[n], len(test)) for n in needed}
    g2a_cameras = {test[i].camid for i in queries["G2A"].tolist() if test[i].pid != -1}
    if len(g2a_cameras) != 1:
        raise FarreidError(f"the G2A queries of {info} come from cameras {sorted(c + 1 for c in g2a_cameras)}; "
                           "expected the one ground camera")
    ground = g2a_cameras.pop()
    test = _with_platform(test, ground)
    train: list[Tracklet] = []
    raw_pids: tuple[int, ...] = ()
    if load_train:
        rows = read_table(info, "tracks_train_info")
        train = table_tracks(rows, read_frame_names(info / "train_name.txt"), homes["train"], "tracks_train_info")
        train, raw_pids = relabel(_with_platform([t for t in train if t.pid != -1], ground))
    protocols = {}
    for name in names:
        is_query = np.zeros(len(test), dtype=bool)
        is_query[queries[name]] = True
        query = [test[i] for i in queries[name].tolist() if test[i].pid != -1]
        gallery = [t for t, q in zip(test, is_query.tolist()) if not q and t.pid != -1]
        protocols[name] = Protocol(name, TrackletSet("query", query), TrackletSet("gallery", gallery))
    for tracklet in (*train, *(t for p in protocols.values() for t in (*p.query, *p.gallery))):
        check_image_header(tracklet.frames[0])
    return ReIDDataset("g2avreid", str(root), TrackletSet("train", train), protocols, raw_pids)
