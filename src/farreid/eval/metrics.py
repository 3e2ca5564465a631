"""Exact ranking metrics per query (AP, CMC, mINP, mAP@k), accumulated over query chunks.

Definitions (docs/evaluation.md): for a query, junk gallery items are removed from its ranking; its positives
are the remaining items with its identity. With kept ranks r_1 < ... < r_P (1-based) of its P positives:
AP = (1/P) sum_p p / r_p (non-interpolated), CMC@k = [r_1 <= k], INP = P / r_P,
AP@k = (1/min(P, k)) sum_{p : r_p <= k} p / r_p. Queries with P = 0 are excluded from every mean and counted.
With `ap_interpolation="trapezoid"` (the VReID-XFD challenge's CSV scorer) AP is instead
(1/P) sum_p (q_p + p / r_p) / 2, where q_p = (p - 1) / (r_p - 1) is the precision just before the p-th hit
(q_p = 1 when r_p = 1); AP@k, CMC and INP do not change.
CMC@k for k beyond the number of kept items equals the last value, so it is defined for every k and query.
Only per-query numbers are kept, so results of chunks, protocols or runs can be pooled afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from farreid.config.schema import AP_INTERPOLATIONS
from farreid.errors import FarreidError
from farreid.eval.distance import DistanceInput, as_chunks
from farreid.eval.ranking import JunkRule, RelevantItems, relevant_positions


@dataclass
class RankResult:
    """Per-query outcomes and the means derived from them (NaN when no query has a positive)."""

    ap: np.ndarray  # (num_query,) float64, NaN where the query has no positive
    inp: np.ndarray  # (num_query,) float64, NaN where the query has no positive
    first_hit: np.ndarray  # (num_query,) int64, kept rank of the first positive, 0 = none
    num_positive: np.ndarray  # (num_query,) int64
    ap_at: dict[int, np.ndarray] = field(default_factory=dict)  # k -> (num_query,) float64
    max_rank: int = 50
    depth: int | None = None  # rankings known only to this rank (top-k lists): deeper metrics are NaN

    @property
    def num_query(self) -> int:
        return len(self.ap)

    @property
    def valid(self) -> np.ndarray:
        return self.first_hit > 0

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def num_no_positive(self) -> int:
        return self.num_query - self.num_valid

    def _mean(self, values: np.ndarray) -> float:
        return float(values[self.valid].mean()) if self.num_valid else float("nan")

    def _known(self, k: int | None) -> bool:
        """Whether a metric that reads the ranking down to rank k (None = all of it) is defined."""
        return self.depth is None or (k is not None and k <= self.depth)

    @property
    def mAP(self) -> float:
        return self._mean(self.ap) if self._known(None) else float("nan")

    @property
    def mINP(self) -> float:
        return self._mean(self.inp) if self._known(None) else float("nan")

    @property
    def map_at(self) -> dict[int, float]:
        return {k: self._mean(v) if self._known(k) else float("nan") for k, v in self.ap_at.items()}

    def rank(self, k: int) -> float:
        """CMC at rank k (any k >= 1): the share of valid queries whose first positive is within the top k."""
        if not self.num_valid or not self._known(k):
            return float("nan")
        return float((self.first_hit[self.valid] <= k).mean())

    @property
    def cmc(self) -> np.ndarray:
        """CMC@1..max_rank, float64 (NaN beyond `depth`)."""
        if not self.num_valid:
            return np.full(self.max_rank, np.nan)
        hits = np.bincount(np.minimum(self.first_hit[self.valid], self.max_rank + 1), minlength=self.max_rank + 2)
        curve = np.cumsum(hits[1 : self.max_rank + 1]) / self.num_valid
        if self.depth is not None:
            curve[self.depth :] = np.nan
        return curve

    def summary(self, ranks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
        out = {"mAP": self.mAP, **{f"R{k}": self.rank(k) for k in ranks}, "mINP": self.mINP}
        out.update({f"mAP@{k}": v for k, v in self.map_at.items()})
        return out

    def to_dict(self) -> dict:
        return {
            **self.summary(),
            "num_query": self.num_query,
            "num_valid": self.num_valid,
            "num_no_positive": self.num_no_positive,
            "cmc": self.cmc.tolist(),
        }

    @classmethod
    def pooled(cls, results: list["RankResult"]) -> "RankResult":
        """One result over the queries of several (query-pooled, i.e. micro-averaged, metrics)."""
        if not results:
            raise FarreidError("nothing to pool: no rank results given")
        ks = set(results[0].ap_at)
        if any(set(r.ap_at) != ks for r in results):
            raise FarreidError("cannot pool rank results computed with different mAP@k cut-offs")
        return cls(
            ap=np.concatenate([r.ap for r in results]),
            inp=np.concatenate([r.inp for r in results]),
            first_hit=np.concatenate([r.first_hit for r in results]),
            num_positive=np.concatenate([r.num_positive for r in results]),
            ap_at={k: np.concatenate([r.ap_at[k] for r in results]) for k in sorted(ks)},
            max_rank=max(r.max_rank for r in results),
            depth=min((r.depth for r in results if r.depth is not None), default=None),
        )



def _chunk_outcomes(
    positions: np.ndarray, rel: RelevantItems, map_at: tuple[int, ...], ap_interpolation: str = "none"
) -> dict[str, np.ndarray]:
    """Per-query outcomes of one chunk from the positions of its relevant items."""
    c = len(rel.ptr) - 1
    counts = np.diff(rel.ptr)
    row = np.repeat(np.arange(c), counts)
    order = np.lexsort((positions, row))
    pos, junk = positions[order], rel.junk[order]
    junk_before = np.cumsum(junk) - junk
    junk_before = junk_before - junk_before[rel.ptr[row]] if len(row) else junk_before
    kept_rank = pos - junk_before + 1
    good = ~junk
    g_row, g_rank = row[good], kept_rank[good].astype(np.float64)
    npos = np.bincount(g_row, minlength=c)
    gptr = np.concatenate([[0], np.cumsum(npos)])
    p = np.arange(len(g_row)) - gptr[g_row] + 1
    precision = p / g_rank
    has = npos > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if ap_interpolation == "trapezoid":
            before = np.where(g_rank > 1, (p - 1) / np.maximum(g_rank - 1, 1), 1.0)
            ap = np.bincount(g_row, weights=(before + precision) / 2, minlength=c) / npos
        else:
            ap = np.bincount(g_row, weights=precision, minlength=c) / npos
        first = np.zeros(c, dtype=np.int64)
        first[has] = g_rank[gptr[:-1][has]].astype(np.int64)
        inp = np.full(c, np.nan)
        inp[has] = npos[has] / g_rank[gptr[1:][has] - 1]
        ap_at = {
            k: np.bincount(g_row, weights=precision * (g_rank <= k), minlength=c) / np.minimum(npos, k)
            for k in map_at
        }
    ap[~has] = np.nan
    for v in ap_at.values():
        v[~has] = np.nan
    return {"ap": ap, "inp": inp, "first_hit": first, "num_positive": npos.astype(np.int64), "ap_at": ap_at}


class RankAccumulator:
    """Consumes `(first_row, block)` distance chunks in any order and returns one `RankResult`.

    Memory beyond the block is O(num_query + relevant pairs); each chunk is ranked on its own device.
    """

    def __init__(
        self,
        q_pids: np.ndarray,
        g_pids: np.ndarray,
        q_camids: np.ndarray | None = None,
        g_camids: np.ndarray | None = None,
        *,
        junk: str | JunkRule = "camera",
        q_names: list[str] | None = None,
        g_names: list[str] | None = None,
        max_rank: int = 50,
        map_at: tuple[int, ...] = (10,),
        backend: str = "auto",
        ap_interpolation: str = "none",
    ):
        if max_rank < 1 or any(k < 1 for k in map_at):
            raise FarreidError(f"max_rank and mAP@k cut-offs must be >= 1, got {max_rank} and {tuple(map_at)}")
        if ap_interpolation not in AP_INTERPOLATIONS:
            raise FarreidError(f"AP interpolation must be one of {AP_INTERPOLATIONS}, got {ap_interpolation!r}")
        self.ap_interpolation = ap_interpolation
        self.rel = JunkRule.of(junk).relevant_items(q_pids, g_pids, q_camids, g_camids, q_names, g_names)
        self.num_query, self.num_gallery = len(self.rel.ptr) - 1, len(g_pids)
        self.max_rank, self.map_at, self.backend = max_rank, tuple(map_at), backend
        self.seen = np.zeros(self.num_query, dtype=bool)
        self.out = {
            "ap": np.full(self.num_query, np.nan),
            "inp": np.full(self.num_query, np.nan),
            "first_hit": np.zeros(self.num_query, dtype=np.int64),
            "num_positive": np.zeros(self.num_query, dtype=np.int64),
        }
        self.ap_at = {k: np.full(self.num_query, np.nan) for k in self.map_at}

    def update(self, start: int, block: torch.Tensor | np.ndarray) -> None:
        stop = start + block.shape[0]
        if block.ndim != 2 or block.shape[1] != self.num_gallery or start < 0 or stop > self.num_query:
            raise FarreidError(
                f"distance block rows {start}:{stop} x {block.shape[1] if block.ndim == 2 else '?'} columns does not "
                f"fit {self.num_query} queries x {self.num_gallery} gallery items"
            )
        if self.seen[start:stop].any():
            raise FarreidError(f"distance rows {start}:{stop} were given twice")
        rel = self.rel.rows(start, stop)
        outcome = _chunk_outcomes(relevant_positions(block, rel, self.backend), rel, self.map_at, self.ap_interpolation)
        for key, arr in self.out.items():
            arr[start:stop] = outcome[key]
        for k, arr in self.ap_at.items():
            arr[start:stop] = outcome["ap_at"][k]
        self.seen[start:stop] = True

    def result(self) -> RankResult:
        if not self.seen.all():
            missing = int((~self.seen).sum())
            raise FarreidError(f"{missing} of {self.num_query} query rows never received distances")
        return RankResult(ap_at=dict(self.ap_at), max_rank=self.max_rank, **self.out)


def evaluate_rank(
    distances: DistanceInput,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray | None = None,
    g_camids: np.ndarray | None = None,
    *,
    junk: str | JunkRule = "camera",
    q_names: list[str] | None = None,
    g_names: list[str] | None = None,
    max_rank: int = 50,
    map_at: tuple[int, ...] = (10,),
    chunk_size: int = 1024,
    backend: str = "auto",
    ap_interpolation: str = "none",
) -> RankResult:
    """Ranking metrics from a (q, g) distance matrix or a stream of `(first_row, block)` chunks.

    The numbers do not depend on how the rows are chunked. Equals torchreid's `evaluate_rank` (CMC exactly,
    mAP to float rounding) whenever torchreid is defined (no ties, every query keeps >= max_rank items).
    """
    acc = RankAccumulator(
        q_pids, g_pids, q_camids, g_camids, junk=junk, q_names=q_names, g_names=g_names,
        max_rank=max_rank, map_at=map_at, backend=backend, ap_interpolation=ap_interpolation,
    )
    for start, block in as_chunks(distances, chunk_size):
        acc.update(start, block)
    return acc.result()
