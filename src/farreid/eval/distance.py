"""Query-by-gallery distances, produced in row chunks so that no q x g matrix has to exist whole.

Every consumer in `farreid.eval` (metrics, re-ranking output, rankings for the CSV, top-k for pictures) reads a
stream of `(first_row, block)` pairs, where `block` holds the distances of queries `first_row ...` to the whole
gallery. A whole matrix is just a stream of one or more slices of it.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Union

import numpy as np
import torch
import torch.nn.functional as F

from farreid.config.schema import DISTANCE_METRICS
from farreid.errors import FarreidError

DistanceChunks = Iterable[tuple[int, torch.Tensor]]
DistanceInput = Union[torch.Tensor, np.ndarray, DistanceChunks]


def _check_metric(metric: str) -> None:
    if metric not in DISTANCE_METRICS:
        raise FarreidError(f"unknown distance metric {metric!r}; choose one of {', '.join(DISTANCE_METRICS)}")


def as_float_tensor(x: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    """A 2-D floating tensor (numpy input is wrapped, not copied, when it is already float)."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.ndim != 2 or not t.is_floating_point():
        raise FarreidError(f"{what} must be a 2-D float array, got shape {tuple(t.shape)} and dtype {t.dtype}")
    return t


def _gallery_side(gallery: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The gallery as a contiguous (D, g) matrix (BLAS is ~2x faster than on a transposed view) plus its
    squared norms for the Euclidean metric."""
    g = gallery.float()
    if metric == "cosine":
        return F.normalize(g, dim=1).T.contiguous(), None
    return g.T.contiguous(), (g * g).sum(1)


def _block(query: torch.Tensor, g_t: torch.Tensor, g_sq: torch.Tensor | None, metric: str) -> torch.Tensor:
    q = query.float()
    if metric == "cosine":
        return torch.addmm(torch.ones(1, 1, device=q.device), F.normalize(q, dim=1), g_t, alpha=-1.0)
    squared = torch.addmm(g_sq[None, :], q, g_t, alpha=-2.0).add_((q * q).sum(1, keepdim=True))
    return squared.clamp_min_(0.0).sqrt_()


def distance_matrix(query: torch.Tensor, gallery: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """Distances (q, g) in float32: cosine = 1 - cos(q, g); euclidean = ||q - g|| (not squared)."""
    _check_metric(metric)
    return _block(query, *_gallery_side(gallery, metric), metric)


def distance_chunks(
    query: torch.Tensor,
    gallery: torch.Tensor,
    metric: str = "cosine",
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield `(first_row, distances)` for `chunk_size` queries at a time, computed on `device`.

    Memory is O(chunk_size x gallery); the gallery features are moved to the device once. Arguments are
    checked when this is called, not when the first chunk is asked for.
    """
    _check_metric(metric)
    query, gallery = as_float_tensor(query, "query features"), as_float_tensor(gallery, "gallery features")
    if query.shape[1] != gallery.shape[1]:
        raise FarreidError(f"query features have dimension {query.shape[1]} but gallery features {gallery.shape[1]}")
    if chunk_size < 1:
        raise FarreidError(f"chunk_size must be >= 1, got {chunk_size}")
    device = torch.device(device) if device is not None else gallery.device
    return _chunks(query, gallery.to(device), metric, chunk_size, device)


def _chunks(query, gallery, metric, chunk_size, device) -> Iterator[tuple[int, torch.Tensor]]:
    g_t, g_sq = _gallery_side(gallery, metric)
    for start in range(0, query.shape[0], chunk_size):
        yield start, _block(query[start : start + chunk_size].to(device), g_t, g_sq, metric)


def matrix_chunks(distmat: torch.Tensor | np.ndarray, chunk_size: int = 1024) -> Iterator[tuple[int, torch.Tensor]]:
    """Row slices of an existing distance matrix (views, no copies)."""
    d = as_float_tensor(distmat, "distance matrix")
    for start in range(0, d.shape[0], max(1, chunk_size)):
        yield start, d[start : start + chunk_size]


def as_chunks(distances: DistanceInput, chunk_size: int = 1024) -> DistanceChunks:
    """Accept a whole matrix or an iterable of `(first_row, block)` and return the latter."""
    if isinstance(distances, (torch.Tensor, np.ndarray)):
        return matrix_chunks(distances, chunk_size)
    return distances
