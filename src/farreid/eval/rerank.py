"""Exact k-reciprocal re-ranking (Zhong et al., CVPR 2017) in O(N*k + chunk x gallery) memory.

The definition is torchreid's `re_ranking(q_g, q_q, g_g, k1, k2, lambda_value)` to the letter: it squares its
input distances, divides each column of the (q+g)^2 matrix by the column's maximum, takes each item's k1+1
nearest neighbours (the item itself included), keeps the k-reciprocal ones, adds a reciprocal neighbour's own
round(k1/2)-reciprocal set when more than 2/3 of that set lies inside, weights the expanded set by exp(-distance)
normalised to sum 1 (V), averages V over the k2 nearest neighbours (query expansion), and returns
(1 - lambda) * Jaccard(V_query, V_gallery) + lambda * normalised squared distance, for query rows and gallery
columns. torchreid holds five dense N x N matrices (~16-20 N^2 bytes); here every step needs only the
top-(k1+1) lists, the sparse V (N x |expanded set|) and one output chunk at a time:

1. one pass over row blocks of the base distances: per-row maximum and top-(k1+1) neighbours;
2. reciprocal sets and their expansion from the neighbour lists alone; V as a sparse CSR matrix;
3. query expansion as sparse row averages;
4. per query chunk, sum_k min(V[i, k], V[j, k]) by walking the gallery entries of each column k that query i
   touches (an inverted index), then the final mix, yielded as `(first_row, block)` for the metrics.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch

from farreid.errors import FarreidError
from farreid.eval.rerank_source import FeatureSource, MatrixSource
from farreid.utils.log import progress

BLOCK_BYTES = 32 * 2**20  # one row block of base distances (the pass over all N rows holds ~2 of them)
PAIR_BUDGET = 2**20  # (query entry, gallery entry) pairs expanded at once in the Jaccard step
ENTRY_BUDGET = 2**20  # sparse entries gathered at once in query expansion (~8 int64/float temporaries each)


@dataclass(frozen=True)
class RerankParams:
    """k1: neighbours for the reciprocal sets; k2: neighbours averaged in query expansion; lambda_value:
    weight of the original distance in the final mix."""

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3

    def __post_init__(self):
        if self.k1 < 1 or self.k2 < 1:
            raise FarreidError(f"re-ranking needs k1 >= 1 and k2 >= 1, got k1={self.k1}, k2={self.k2}")
        if not 0.0 <= self.lambda_value <= 1.0:
            raise FarreidError(f"re-ranking lambda_value must be in [0, 1], got {self.lambda_value}")


@dataclass
class _Sparse:
    """Row-major sparse matrix as flat (row, col, value) sorted by row, plus row pointers."""

    rows: torch.Tensor
    cols: torch.Tensor
    vals: torch.Tensor
    ptr: torch.Tensor  # (num_rows + 1,)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a phase of many small tensor ops on one CPU thread. With two OpenMP threads they were 1.5x faster on
    an idle 2-core machine but 7-9x slower once other processes competed for the cores (threads wait at every
    op for a descheduled sibling); the big matmul / top-k pass keeps all threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, max(1, size)):
        yield start, min(n, start + max(1, size))


def _expand_segments(starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the concatenated ranges [starts[s], starts[s] + lengths[s]) and their segment ids."""
    seg = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    return starts[seg] + torch.arange(len(seg), device=lengths.device) - offsets[seg], seg


def _runs(ends: torch.Tensor, budget: int) -> list[tuple[int, int]]:
    """Cut consecutive entries (cumulative sizes `ends`) into runs of about `budget` (a larger entry stands alone)."""
    total = int(ends[-1]) if len(ends) else 0
    marks = torch.arange(budget, max(budget, total), budget, device=ends.device)
    bounds = sorted({0, *torch.searchsorted(ends, marks, right=True).tolist(), len(ends)})
    return list(zip(bounds[:-1], bounds[1:]))


def _pointers(rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    ptr = torch.zeros(num_rows + 1, dtype=torch.long, device=rows.device)
    ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return ptr


def _neighbours(src, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k (ascending, self included) of every row of the normalised squared distances: indices, their
    normalised values, and the row maxima."""
    n = src.num_total
    knn = torch.empty(n, k, dtype=torch.long, device=src.device)
    values = torch.empty(n, k, dtype=torch.float32, device=src.device)
    row_max = torch.empty(n, dtype=torch.float32, device=src.device)
    with progress(total=n, desc="re-ranking: neighbours") as bar:
        for start, stop in _blocks(n, max(128, BLOCK_BYTES // (4 * n))):  # >= 128 rows keeps the matmul efficient
            index, squared, peak = src.nearest(start, stop, k)
            if (peak <= 0).any():
                bad = start + int(torch.nonzero(peak <= 0)[0])
                raise FarreidError(f"re-ranking: item {bad} is at distance 0 from every item (identical features?)")
            knn[start:stop], values[start:stop], row_max[start:stop] = index, squared / peak[:, None], peak
            bar.update(stop - start)
    return knn, values, row_max


def _pair_values(src, knn: torch.Tensor, values: torch.Tensor, row_max: torch.Tensor, rows, cols) -> torch.Tensor:
    """Normalised squared distance at (rows, cols): read from the kept neighbour lists when the pair is there
    (almost always), computed from the source otherwise."""
    match = knn[rows] == cols[:, None]
    found = match.any(dim=1)
    out = values[rows, match.to(torch.uint8).argmax(dim=1)]
    missing = ~found
    if missing.any():
        r, c = rows[missing], cols[missing]
        out[missing] = src.squared_pairs(r, c) / row_max[r]
    return out


def _reciprocal(knn: torch.Tensor, k: int) -> torch.Tensor:
    """mask[i, a] = i is among the first k neighbours of its a-th neighbour (a < k)."""
    nn = knn[:, :k]
    out = torch.empty(nn.shape, dtype=torch.bool, device=knn.device)
    for start, stop in _blocks(len(nn), ENTRY_BUDGET // (k * k)):
        me = torch.arange(start, stop, device=knn.device)[:, None, None]
        out[start:stop] = (nn[nn[start:stop]] == me).any(-1)
    return out


def _expanded_weights(src, knn: torch.Tensor, values: torch.Tensor, row_max: torch.Tensor, k1: int) -> _Sparse:
    """V: exp(-distance) over each item's expanded k-reciprocal set, normalised per row."""
    n = src.num_total
    k_full, k_half = min(k1 + 1, n), min(int(round(k1 / 2.0)) + 1, n)  # round() halves to even, as np.around
    recip_full, recip_half = _reciprocal(knn, k_full), _reciprocal(knn, k_half)
    near_half = knn[:, :k_half]
    # torchreid compares len(intersection) > 2. / 3 * len(candidate set) in float64; keep those exact thresholds
    threshold = torch.tensor([2.0 / 3 * m for m in range(k_half + 1)], dtype=torch.float64, device=knn.device)
    rows_out, cols_out, vals_out = [], [], []
    for start, stop in _blocks(n, ENTRY_BUDGET // (k_full * k_half)):
        cand = knn[start:stop, :k_full]  # (c, K1)
        is_recip = recip_full[start:stop]
        k_recip = torch.where(is_recip, cand, -1)
        cand_set = near_half[cand]  # (c, K1, H1): each candidate's half-size neighbours
        cand_mask = recip_half[cand] & is_recip[..., None]  # its half-size reciprocal set, for real candidates
        # |candidate set & k_recip|: look every candidate-set member up in the sorted k_recip row
        recip_sorted = k_recip.sort(dim=1).values
        flat = cand_set.reshape(len(cand), -1)
        hit = recip_sorted.gather(1, torch.searchsorted(recip_sorted, flat).clamp_max_(k_full - 1)) == flat
        inside = (hit.view_as(cand_mask) & cand_mask).sum(-1)
        accept = is_recip & (inside.double() > threshold[cand_mask.sum(-1)])
        extra = torch.where(accept[..., None] & cand_mask, cand_set, -1).flatten(1)
        members = torch.cat([k_recip, extra], dim=1).sort(dim=1).values
        keep = members >= 0
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]
        rows = torch.arange(start, stop, device=knn.device)[:, None].expand_as(members)[keep]
        cols = members[keep]
        weight = torch.exp(-_pair_values(src, knn, values, row_max, rows, cols))
        total = torch.zeros(stop - start, dtype=torch.float32, device=knn.device).index_add_(0, rows - start, weight)
        rows_out.append(rows)
        cols_out.append(cols)
        vals_out.append(weight / total[rows - start])
    rows = torch.cat(rows_out)
    return _Sparse(rows, torch.cat(cols_out), torch.cat(vals_out), _pointers(rows, n))


def _query_expansion(v: _Sparse, knn: torch.Tensor, k2: int) -> _Sparse:
    """V_qe[i] = mean of V over i's k2 nearest neighbours (self included), kept sparse."""
    n = len(v.ptr) - 1
    k2 = min(k2, knn.shape[1], n)
    lengths_all = v.ptr[1:] - v.ptr[:-1]
    rows_out, cols_out, vals_out = [], [], []
    mean_len = max(1, len(v.vals) // max(1, n))
    for start, stop in _blocks(n, ENTRY_BUDGET // (k2 * mean_len)):
        neigh = knn[start:stop, :k2].reshape(-1)
        idx, seg = _expand_segments(v.ptr[neigh], lengths_all[neigh])
        owner = seg // k2 + start
        key = owner * n + v.cols[idx]
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        summed = torch.zeros(len(uniq), dtype=torch.float32, device=knn.device).index_add_(0, inverse, v.vals[idx])
        rows_out.append(uniq // n)
        cols_out.append(uniq % n)
        vals_out.append(summed / k2)
    rows = torch.cat(rows_out)
    return _Sparse(rows, torch.cat(cols_out), torch.cat(vals_out), _pointers(rows, n))


def _gallery_columns(v: _Sparse, num_query: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverted index: for every column k, the gallery rows j with V[j, k] != 0 and their values."""
    n = len(v.ptr) - 1
    first = int(v.ptr[num_query])
    cols = v.cols[first:]
    order = torch.argsort(cols, stable=True)
    return _pointers(cols, n), v.rows[first:][order] - num_query, v.vals[first:][order]


def _rerank_chunks(src, params: RerankParams, chunk_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    q, n = src.num_query, src.num_total
    g = n - q
    # 2 (k1 + 1) neighbours hold ~all of each expanded set, so V's weights are mostly read, not recomputed
    knn, values, row_max = _neighbours(src, min(max(2 * (params.k1 + 1), params.k2), n))
    with _one_thread():
        v = _expanded_weights(src, knn, values, row_max, params.k1)
        if params.k2 != 1:  # torchreid skips query expansion for k2 == 1
            v = _query_expansion(v, knn, params.k2)
        del knn, values
        col_ptr, g_rows, g_vals = _gallery_columns(v, q)
        col_len = col_ptr[1:] - col_ptr[:-1]
    lam = params.lambda_value
    for start, stop in progress(list(_blocks(q, chunk_size)), desc="re-ranking: queries"):
        overlap = torch.zeros((stop - start) * g, dtype=torch.float32, device=src.device)
        with _one_thread():
            a, b = int(v.ptr[start]), int(v.ptr[stop])
            q_cols, q_vals, q_rows = v.cols[a:b], v.vals[a:b], v.rows[a:b] - start
            counts = col_len[q_cols]
            for first, last in _runs(torch.cumsum(counts, 0), PAIR_BUDGET):
                idx, seg = _expand_segments(col_ptr[q_cols[first:last]], counts[first:last])
                seg += first
                target = q_rows[seg] * g + g_rows[idx]
                overlap.index_add_(0, target, torch.minimum(q_vals[seg], g_vals[idx]))
        # final = (1 - overlap / (2 - overlap)) * (1 - lam) + original * lam, in place, in torchreid's op order
        jaccard = overlap.view(stop - start, g)
        jaccard.div_(2.0 - jaccard).neg_().add_(1.0).mul_(1 - lam)
        original = src.squared_query_gallery(start, stop).div_(row_max[start:stop, None])
        yield start, jaccard.add_(original.mul_(lam))


def _checked_chunk_size(chunk_size: int) -> int:
    if chunk_size < 1:
        raise FarreidError(f"chunk_size must be >= 1, got {chunk_size}")
    return chunk_size


def rerank_matrix_chunks(
    q_g, q_q, g_g, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, chunk_size: int = 256
) -> Iterator[tuple[int, torch.Tensor]]:
    """Re-ranked (q, g) distances from torchreid-style distance matrices, as `(first_row, block)` chunks."""
    params = RerankParams(k1, k2, lambda_value)
    return _rerank_chunks(MatrixSource(q_g, q_q, g_g), params, _checked_chunk_size(chunk_size))


def rerank_feature_chunks(
    query,
    gallery,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    normalize: bool = True,
    chunk_size: int = 256,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Re-ranked (q, g) distances from features (base distance: Euclidean, on L2-normalised features when
    `normalize`), computed on `device`, as `(first_row, block)` chunks."""
    params = RerankParams(k1, k2, lambda_value)
    return _rerank_chunks(FeatureSource(query, gallery, normalize, device), params, _checked_chunk_size(chunk_size))


def re_ranking(q_g, q_q, g_g, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> torch.Tensor:
    """Drop-in for torchreid's `re_ranking`: the whole (q, g) float32 re-ranked matrix."""
    source = MatrixSource(q_g, q_q, g_g)
    out = torch.empty(source.num_query, source.num_total - source.num_query, dtype=torch.float32)
    for start, block in _rerank_chunks(source, RerankParams(k1, k2, lambda_value), 256):
        out[start : start + block.shape[0]] = block
    return out
