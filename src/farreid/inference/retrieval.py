"""Exact top-k search of a gallery by inner product (= cosine for L2-normalised embeddings), streamed.

The gallery arrives as an iterable of row chunks (e.g. feature-file shards read one at a time), so a gallery of a
million 1024-d embeddings (4 GB) is searched without ever being held whole: each chunk is scored, its top-k merged
into a running top-k. Scoring uses torch matmul + topk or faiss' brute-force `knn` (no index is built: a flat
index would copy every chunk). `backend="auto"` picks faiss for many queries on the CPU, where its blocked search
avoids materialising a (queries x chunk) score matrix, and torch otherwise (few queries, GPU); see
benchmarks/bench_search.py for the measured crossover.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from farreid.errors import FarreidError

FAISS_MIN_QUERIES = 256  # below this, torch matmul + topk was as fast or faster on the CPU (bench_search.py)


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(backend: str, num_queries: int, device: torch.device) -> str:
    if backend not in ("auto", "torch", "faiss"):
        raise FarreidError(f"search backend must be auto, torch or faiss, got {backend!r}")
    if backend == "faiss" and not _faiss_available():
        raise FarreidError("search backend 'faiss' needs the faiss-cpu package: pip install faiss-cpu")
    if backend == "auto":
        return "faiss" if device.type == "cpu" and num_queries >= FAISS_MIN_QUERIES and _faiss_available() else "torch"
    return backend


def _chunk_topk(query: torch.Tensor, chunk: torch.Tensor, k: int, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, chunk.shape[0])
    if backend == "faiss":
        import faiss

        scores, idx = faiss.knn(
            np.ascontiguousarray(query.numpy(), dtype=np.float32),
            np.ascontiguousarray(chunk.numpy(), dtype=np.float32),
            k,
            metric=faiss.METRIC_INNER_PRODUCT,
        )
        return torch.from_numpy(scores), torch.from_numpy(idx).long()
    return torch.topk(query @ chunk.T, k, dim=1)


def topk_search(
    query: torch.Tensor,
    gallery_chunks: Iterable[torch.Tensor],
    k: int = 20,
    backend: str = "auto",
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (q, k) descending and gallery row indices (q, k) over all chunks, exact."""
    if query.ndim != 2:
        raise FarreidError(f"query embeddings must be a (num_queries, dim) matrix, got shape {tuple(query.shape)}")
    device = torch.device(device)
    backend = choose_backend(backend, query.shape[0], device)
    query = query.to(device=device if backend == "torch" else "cpu", dtype=torch.float32)
    best_scores = torch.full((query.shape[0], 0), float("-inf"), device=query.device)
    best_index = torch.zeros((query.shape[0], 0), dtype=torch.long, device=query.device)
    offset = 0
    for chunk in gallery_chunks:
        if chunk.ndim != 2 or chunk.shape[1] != query.shape[1]:
            raise FarreidError(
                f"gallery chunk of shape {tuple(chunk.shape)} does not match query dimension {query.shape[1]}"
            )
        if chunk.shape[0] == 0:
            continue
        chunk = chunk.to(device=query.device, dtype=torch.float32)
        scores, idx = _chunk_topk(query, chunk, k, backend)
        scores, idx = scores.to(query.device), idx.to(query.device) + offset
        merged_scores = torch.cat([best_scores, scores], dim=1)
        merged_index = torch.cat([best_index, idx], dim=1)
        keep = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
        best_scores, best_index = keep.values, torch.gather(merged_index, 1, keep.indices)
        offset += chunk.shape[0]
    if offset == 0:
        raise FarreidError("the gallery is empty")
    return best_scores.cpu(), best_index.cpu()
