"""Validation identities held out from the train split (the engine uses this when `data.val_ids > 0`).

The challenge's test labels are anonymised, so model selection must happen on identities the model never trains
on. `holdout_identities` draws `num_ids` identities (preferring those seen from both platforms), relabels the
remaining train identities 0..N-1, and splits each held-out identity's tracklets into query and gallery:
per platform, in a seeded order, alternately to query and gallery, aerial starting with query and ground with
gallery. An identity with one aerial and one ground tracklet thus gives an A2G pair; with more, queries of both
platforms find positives on the other platform and (with camera-based junk filtering) in the other aerial
session, so the validation figure mixes A2G, G2A and cross-session A2A. Single-platform data (MARS and the
like) splits the same way per camera instead.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from farreid.data.tracklet import Tracklet, TrackletSet, relabel
from farreid.errors import FarreidError


def holdout_identities(train_set: TrackletSet, num_ids: int, seed: int = 0) -> tuple[TrackletSet, TrackletSet, TrackletSet]:
    """(train without the held-out identities, relabelled; validation query; validation gallery)."""
    by_pid: dict[int, list[Tracklet]] = defaultdict(list)
    for t in train_set:
        by_pid[t.pid].append(t)
    if num_ids < 1 or num_ids >= len(by_pid):
        raise FarreidError(f"cannot hold out {num_ids} of {len(by_pid)} training identities (need 1..{len(by_pid) - 1})")
    rng = np.random.default_rng([seed, num_ids])
    pids = sorted(by_pid)
    two_platforms = {p for p in pids if len({t.platform for t in by_pid[p]}) == 2}
    multi_camera = {p for p in pids if len({t.camid for t in by_pid[p]}) >= 2}
    order = rng.permutation(len(pids))
    # Preference: both platforms, then at least two cameras, then the rest (ties in seeded random order).
    ranked = sorted((pids[i] for i in order), key=lambda p: (p not in two_platforms, p not in multi_camera))
    held = set(ranked[:num_ids])
    split_by = "platform" if two_platforms else "camid"
    query, gallery = [], []
    for pid in sorted(held):
        groups: dict[object, list[Tracklet]] = defaultdict(list)
        for t in by_pid[pid]:
            groups[getattr(t, split_by)].append(t)
        for key in sorted(groups, key=str):
            members = [groups[key][i] for i in rng.permutation(len(groups[key]))]
            to_query_first = key == "aerial" or (split_by == "camid" and key == min(groups))
            for i, t in enumerate(members):
                (query if (i % 2 == 0) == to_query_first else gallery).append(t)
    kept, _ = relabel(t for t in train_set if t.pid not in held)
    return TrackletSet("train", kept), TrackletSet("val query", query), TrackletSet("val gallery", gallery)
