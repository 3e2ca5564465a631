"""Where re-ranking reads its base distances from: three given matrices, or features computed on the fly.

Re-ranking (Zhong et al. 2017, as torchreid's `re_ranking`) works on the (q+g) x (q+g) matrix
D = [[q_q, q_g], [q_g^T, g_g]], squares it, divides every column by its maximum and transposes. Its row i is
therefore column i of D, squared and divided by that column's maximum. A source hands out exactly that
"squared column" view, A2[i, j] = D[j, i]^2, by row blocks and at scattered (i, j) pairs, so nothing N x N is built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from farreid.eval.validity import check_finite
from farreid.errors import FarreidError
from farreid.eval.distance import as_float_tensor


def _scratch(owner, rows: int, cols: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (rows, cols) view of a buffer kept on `owner` and reused block after block: fresh memory costs a page
    fault per 4 KiB on first touch, which for the N x N neighbour pass adds up to more than the arithmetic."""
    buf = getattr(owner, "_buffer", None)
    if buf is None or buf.dtype != dtype or buf.numel() < rows * cols:
        buf = torch.empty(rows * cols, dtype=dtype, device=owner.device)
        owner._buffer = buf
    return buf[: rows * cols].view(rows, cols)


class MatrixSource:
    """Base distances given as torchreid takes them: q_g (q, g), q_q (q, q), g_g (g, g)."""

    def __init__(self, q_g, q_q, g_g):
        q_g, q_q, g_g = (check_finite(as_float_tensor(m, name), f"re-ranking input distances {name}")
                         for m, name in ((q_g, "q_g"), (q_q, "q_q"), (g_g, "g_g")))
        nq, ng = q_g.shape
        if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
            raise FarreidError(
                f"re-ranking needs q_g (q, g), q_q (q, q), g_g (g, g); got {tuple(q_g.shape)}, "
                f"{tuple(q_q.shape)}, {tuple(g_g.shape)}"
            )
        dtype = torch.promote_types(torch.promote_types(q_g.dtype, q_q.dtype), g_g.dtype)
        self.q_g, self.q_q, self.g_g = q_g.to(dtype), q_q.to(dtype), g_g.to(dtype)
        self.num_query, self.num_total = nq, nq + ng
        self.device = q_g.device

    @staticmethod
    def _square(x: torch.Tensor) -> torch.Tensor:
        # numpy squares in the input dtype and then casts to float32; so do we (in place when x is a fresh buffer)
        return x.mul_(x).to(torch.float32)

    def squared_rows(self, start: int, stop: int) -> torch.Tensor:
        """A2[start:stop, :] as float32 (c, N), built in the source's scratch buffer (valid until the next call)."""
        q = self.num_query
        out = _scratch(self, stop - start, self.num_total, self.q_g.dtype)
        if start < q:
            a, b = start, min(stop, q)
            out[: b - a, :q] = self.q_q[:, a:b].T
            out[: b - a, q:] = self.q_g[a:b]
        if stop > q:
            a, b = max(start, q), stop
            out[a - start :, :q] = self.q_g[:, a - q : b - q].T
            out[a - start :, q:] = self.g_g[:, a - q : b - q].T
        return self._square(out)

    def nearest(self, start: int, stop: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For rows start:stop: the k smallest entries of A2 (indices ascending by value, their values) and the
        row maxima. torchreid sorts the rows after dividing by the maximum; dividing by one positive number
        keeps the order (up to ties, which numpy's sort leaves arbitrary too), so the top-k is taken first."""
        rows = self.squared_rows(start, stop)
        top = torch.topk(rows, k, dim=1, largest=False, sorted=True)
        return top.indices, top.values, rows.max(dim=1).values

    def squared_query_gallery(self, start: int, stop: int) -> torch.Tensor:
        """A2[start:stop, q:] for query rows, float32 (c, g)."""
        return self._square(self.q_g[start:stop].clone())

    def squared_pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """A2[rows, cols] (1-D index tensors of equal length)."""
        q = self.num_query
        out = torch.empty(len(rows), dtype=self.q_g.dtype, device=rows.device)
        rq, cq = rows < q, cols < q
        for mask, matrix, r_off, c_off, transposed in (
            (rq & cq, self.q_q, 0, 0, True),
            (rq & ~cq, self.q_g, 0, q, False),
            (~rq & cq, self.q_g, q, 0, True),
            (~rq & ~cq, self.g_g, q, q, True),
        ):
            r, c = rows[mask] - r_off, cols[mask] - c_off
            out[mask] = matrix[c, r] if transposed else matrix[r, c]
        return self._square(out)


class FeatureSource:
    """Base distance = Euclidean distance between features (L2-normalised first when `normalize`).

    Re-ranking squares its input, so the kernel sees the squared Euclidean distance: the original definition of
    Zhong et al. and of the paper's reference code. Squared distances come straight from one matmul per block.
    """

    def __init__(self, query, gallery, normalize: bool = True, device: torch.device | str | None = None):
        query, gallery = as_float_tensor(query, "query features"), as_float_tensor(gallery, "gallery features")
        if query.shape[1] != gallery.shape[1]:
            raise FarreidError(
                f"query features have dimension {query.shape[1]} but gallery features {gallery.shape[1]}"
            )
        self.device = torch.device(device) if device is not None else gallery.device
        x = torch.cat([query, gallery]).to(self.device, torch.float32)
        if not torch.isfinite(x).all():
            raise FarreidError("features contain NaN or infinite values")
        self.x = F.normalize(x, dim=1) if normalize else x
        self.x_t = self.x.T.contiguous()  # BLAS runs ~2x faster on this than on a transposed view
        self.sq_norm = (self.x * self.x).sum(1)
        self.num_query, self.num_total = query.shape[0], x.shape[0]

    def nearest(self, start: int, stop: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `MatrixSource.nearest`, in one fused pass: row i of A2 is |x_i|^2 + (|x_j|^2 - 2 x_i.x_j), and adding
        the row's constant |x_i|^2 changes neither the order nor which entry is largest, so the top-k and the
        maximum are taken on the matmul output and the constant is added to those few values only."""
        partial = _scratch(self, stop - start, self.num_total)
        torch.addmm(self.sq_norm[None, :], self.x[start:stop], self.x_t, alpha=-2.0, out=partial)
        top = torch.topk(partial, k, dim=1, largest=False, sorted=True)
        own = self.sq_norm[start:stop, None]
        squared = top.values.add_(own).clamp_min_(0.0)
        peak = partial.max(dim=1).values.add_(own[:, 0]).clamp_min_(0.0)
        return top.indices, squared, peak

    def squared_query_gallery(self, start: int, stop: int) -> torch.Tensor:
        """A2[start:stop, q:] for query rows, float32 (c, g)."""
        q = self.num_query
        out = torch.addmm(self.sq_norm[None, q:], self.x[start:stop], self.x_t[:, q:], alpha=-2.0)
        return out.add_(self.sq_norm[start:stop, None]).clamp_min_(0.0)

    def squared_pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        dots = (self.x[rows] * self.x[cols]).sum(1)
        return (self.sq_norm[rows] + self.sq_norm[cols] - 2.0 * dots).clamp_min_(0.0)
