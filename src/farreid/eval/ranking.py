"""Where do a query's positives and junk items land in its ranked gallery, without sorting whole rows?

Ranking order (our definition): ascending distance, ties broken by gallery index (a stable sort). The metrics
only need the positions of the *relevant* gallery items of each query (same identity, or junk), and the
position of item j is `#{d < d_j} + #{i < j : d_i == d_j}`. On the CPU we count it per row after sorting only
the values up to the row's farthest relevant item (numpy, threads); elsewhere (GPU) we sort the rows with torch.
Both give the same integers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from farreid.config.schema import JUNK_RULES
from farreid.errors import FarreidError
from farreid.eval.validity import integer_labels
from farreid.utils.log import get_logger

log = get_logger("eval")


@dataclass(frozen=True)
class RelevantItems:
    """For each query, the gallery items that matter to its metrics (CSR layout).

    `gallery[ptr[i]:ptr[i+1]]` are query i's relevant gallery indices, `junk` marks those removed from its
    ranking; the others are its positives.
    """

    ptr: np.ndarray  # (num_query + 1,) int64
    gallery: np.ndarray  # (nnz,) int64
    junk: np.ndarray  # (nnz,) bool

    def rows(self, start: int, stop: int) -> "RelevantItems":
        a, b = self.ptr[start], self.ptr[stop]
        return RelevantItems(self.ptr[start : stop + 1] - a, self.gallery[a:b], self.junk[a:b])


def _group_matches(query_keys: np.ndarray, gallery_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the gallery indices with an equal key, as (counts, flat indices) in query order."""
    order = np.argsort(gallery_keys, kind="stable")
    sorted_keys = gallery_keys[order]
    lo = np.searchsorted(sorted_keys, query_keys, side="left")
    hi = np.searchsorted(sorted_keys, query_keys, side="right")
    counts = hi - lo
    total = int(counts.sum())
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    flat = order[starts + np.arange(total)] if total else np.zeros(0, dtype=np.int64)
    return counts.astype(np.int64), flat.astype(np.int64)


def _codes(q_names: list[str], g_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    q = np.array([vocab.setdefault(n, len(vocab)) for n in q_names], dtype=np.int64)
    g = np.array([vocab.setdefault(n, len(vocab)) for n in g_names], dtype=np.int64)
    return q, g


@dataclass(frozen=True)
class JunkRule:
    """Which gallery items of a query are junk: left out of its ranking, neither a match nor a mismatch.

    camera (`eval.junk=camera`, the Market-1501 / torchreid rule): the items of the query's identity seen by the
    query's camera. A data set chooses what a camera is through its camids (DetReIDX gives an aerial tracklet
    its session, which makes A2A cross-session). tracklet (the challenge scorer's rule): the items with the
    query's tracklet name. Ranking, metrics, pictures and validation all ask this object.
    """

    name: str = "camera"

    def __post_init__(self) -> None:
        if self.name not in JUNK_RULES:
            raise FarreidError(f"unknown junk rule {self.name!r}; choose one of {', '.join(JUNK_RULES)}")

    @classmethod
    def of(cls, junk: "str | JunkRule") -> "JunkRule":
        return junk if isinstance(junk, JunkRule) else cls(junk)

    def is_junk(self, q_pid: int, q_camid: int, q_name: str, g_pid: int, g_camid: int, g_name: str) -> bool:
        """One (query, gallery) pair."""
        if self.name == "tracklet":
            return q_name == g_name
        return q_pid == g_pid and q_camid == g_camid

    def relevant_items(
        self,
        q_pids: np.ndarray,
        g_pids: np.ndarray,
        q_camids: np.ndarray | None = None,
        g_camids: np.ndarray | None = None,
        q_names: list[str] | None = None,
        g_names: list[str] | None = None,
    ) -> RelevantItems:
        """Positives and junk of every query (the camera rule needs camera ids, the tracklet rule names)."""
        q_pids, g_pids = integer_labels(q_pids, "query pids"), integer_labels(g_pids, "gallery pids")
        nq = len(q_pids)
        counts, flat = _group_matches(q_pids, g_pids)
        rows = np.repeat(np.arange(nq), counts)
        if self.name == "camera":
            if q_camids is None or g_camids is None:
                raise FarreidError("junk='camera' needs query and gallery camera ids")
            q_cam, g_cam = integer_labels(q_camids, "query camera ids"), integer_labels(g_camids, "gallery camera ids")
            if len(q_cam) != nq or len(g_cam) != len(g_pids):
                raise FarreidError("camera ids must have one entry per query / gallery item")
            is_junk = g_cam[flat] == q_cam[rows]
        else:
            if q_names is None or g_names is None:
                raise FarreidError("junk='tracklet' needs query and gallery tracklet names")
            if len(q_names) != nq or len(g_names) != len(g_pids):
                raise FarreidError("tracklet names must have one entry per query / gallery item")
            q_code, g_code = _codes(list(q_names), list(g_names))
            name_counts, name_flat = _group_matches(q_code, g_code)
            rows = np.concatenate([rows, np.repeat(np.arange(nq), name_counts)])
            flat = np.concatenate([flat, name_flat])
            _, first = np.unique(rows * max(1, len(g_pids)) + flat, return_index=True)  # sorted by (row, gallery)
            rows, flat = rows[first], flat[first]
            is_junk = g_code[flat] == q_code[rows]
        ptr = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=nq), out=ptr[1:])
        return RelevantItems(ptr, flat, np.asarray(is_junk, dtype=bool))

    def check_scorable(self, protocol: str, query: Any, gallery: Any) -> None:
        """Refuse the camera rule on one-camera data, where it leaves no query a match (every positive is in the
        query's own camera) and the metrics would be empty; the tracklet rule is what such data needs. With
        several cameras and still no cross-camera match, warn. `query` / `gallery` carry pids, camids, names."""
        if self.name != "camera":
            return
        q, g = query, gallery
        cameras: dict[int, set[int]] = {}
        names: dict[int, set[str]] = {}
        for pid, camid, name in zip(g.pids.tolist(), g.camids.tolist(), g.names):
            cameras.setdefault(pid, set()).add(camid)
            names.setdefault(pid, set()).add(name)
        cross_camera = sum(bool(cameras.get(p, set()) - {c}) for p, c in zip(q.pids.tolist(), q.camids.tolist()))
        other_tracklet = sum(bool(names.get(p, set()) - {n}) for p, n in zip(q.pids.tolist(), q.names))
        if cross_camera or not other_tracklet:
            return
        used = sorted(set(q.camids.tolist()) | set(g.camids.tolist()))
        message = (
            f"protocol {protocol}: no query has its identity in another camera ({len(q)} queries and {len(g)} "
            f"gallery tracklets from camera{'s' if len(used) > 1 else ''} {', '.join(map(str, used))}), so the camera "
            "junk rule (eval.junk=camera: the same person in the same camera is not a match) leaves no query to score"
        )
        if len(used) > 1:
            log.warning(message)
            return
        raise FarreidError(
            f"{message}. For one-camera footage pass eval.junk=tracklet: only the query's own tracklet is left out, "
            f"so the other tracklets of its identity count ({other_tracklet} of {len(q)} queries have some)"
        )


def _tie_corrected(row: np.ndarray, cols: np.ndarray, lt: np.ndarray, le: np.ndarray) -> np.ndarray:
    """Add, for items whose distance is shared with others, the tied items of lower gallery index."""
    for k in np.nonzero(le - lt > 1)[0]:
        j = cols[k]
        lt[k] += np.count_nonzero(row[:j] == row[j])
    return lt


def _positions_rows(block: np.ndarray, rel: RelevantItems, out: np.ndarray, r0: int, r1: int) -> None:
    for r in range(r0, r1):
        a, b = rel.ptr[r], rel.ptr[r + 1]
        if a == b:
            continue
        row = block[r]
        cols = rel.gallery[a:b]
        t = row[cols]
        head = row[row <= t.max()]  # everything that can precede a relevant item
        head.sort()
        lt = np.searchsorted(head, t, side="left")
        le = np.searchsorted(head, t, side="right")
        out[a:b] = _tie_corrected(row, cols, lt, le)


def _positions_numpy(block: np.ndarray, rel: RelevantItems, threads: int) -> np.ndarray:
    out = np.zeros(len(rel.gallery), dtype=np.int64)
    n = block.shape[0]
    parts = max(1, min(threads, n))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    if parts == 1:
        _positions_rows(block, rel, out, 0, n)
    else:
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(lambda i: _positions_rows(block, rel, out, bounds[i], bounds[i + 1]), range(parts)))
    return out


def _positions_torch(block: torch.Tensor, rel: RelevantItems) -> np.ndarray:
    device = block.device
    counts = np.diff(rel.ptr)
    if len(rel.gallery) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = torch.from_numpy(np.repeat(np.arange(len(counts)), counts)).to(device)
    slot = torch.from_numpy(np.arange(len(rel.gallery)) - np.repeat(rel.ptr[:-1], counts)).to(device)
    cols = torch.from_numpy(rel.gallery).to(device)
    t = block[rows, cols]
    padded = torch.full((block.shape[0], int(counts.max())), float("inf"), device=device, dtype=block.dtype)
    padded[rows, slot] = t
    ordered = torch.sort(block, dim=1).values
    lt = torch.searchsorted(ordered, padded, side="left")[rows, slot].cpu().numpy()
    le = torch.searchsorted(ordered, padded, side="right")[rows, slot].cpu().numpy()
    out = lt.astype(np.int64)
    tied = np.nonzero(le - lt > 1)[0]
    if len(tied):
        host = block.cpu().numpy()
        row_of = rows.cpu().numpy()
        for k in tied:
            j = rel.gallery[k]
            out[k] += np.count_nonzero(host[row_of[k], :j] == host[row_of[k], j])
    return out


def relevant_positions(block: torch.Tensor | np.ndarray, rel: RelevantItems, backend: str = "auto") -> np.ndarray:
    """0-based position of every relevant item in its query's full ranking (junk included), for a row block.

    backend: "numpy" (partial per-row sort, CPU threads), "torch" (full row sort on the block's device), or
    "auto" = numpy for CPU blocks, torch otherwise. Both return identical integers.
    """
    if isinstance(block, np.ndarray):
        block = torch.from_numpy(block)
    if block.dtype not in (torch.float32, torch.float64):  # e.g. bf16 / fp16 distances from autocast
        block = block.float()
    if block.ndim != 2 or block.shape[0] != len(rel.ptr) - 1:
        raise FarreidError(f"distance block of shape {tuple(block.shape)} does not match {len(rel.ptr) - 1} queries")
    if torch.isnan(block.sum()) and torch.isnan(block).any():  # the sum is a cheap first look
        raise FarreidError("distance matrix contains NaN values (check the features for NaN or all-zero rows)")
    if backend == "auto":
        backend = "numpy" if block.device.type == "cpu" else "torch"
    if backend == "numpy":
        host = np.ascontiguousarray(block.detach().cpu().numpy())
        return _positions_numpy(host, rel, torch.get_num_threads())
    if backend == "torch":
        return _positions_torch(block.detach(), rel)
    raise FarreidError(f"unknown ranking backend {backend!r}; choose auto, numpy or torch")
