"""Rankings kept from a distance stream: the top k per query (pictures) or the whole order (submission CSV).

Order is ascending distance with ties broken by gallery index, as in the metrics (TopKCollector notes its one
exception).
"""

from __future__ import annotations

import numpy as np
import torch

from farreid.errors import FarreidError


class _RowCollector:
    def __init__(self, num_query: int, width: int, dtype: np.dtype):
        self.rows = np.zeros((num_query, width), dtype=dtype)
        self.seen = np.zeros(num_query, dtype=bool)

    def _store(self, start: int, order: torch.Tensor) -> None:
        stop = start + order.shape[0]
        self.rows[start:stop] = order.cpu().numpy()
        self.seen[start:stop] = True

    def result(self) -> np.ndarray:
        if not self.seen.all():
            raise FarreidError(f"{int((~self.seen).sum())} query rows never received distances")
        return self.rows


class TopKCollector(_RowCollector):
    """Gallery indices of the k nearest items per query, best first: (num_query, min(k, gallery)) int64."""

    def __init__(self, num_query: int, num_gallery: int, k: int):
        self.k = max(0, min(k, num_gallery))
        super().__init__(num_query, self.k, np.int64)

    def update(self, start: int, block: torch.Tensor) -> None:
        if self.k == 0:
            self.seen[start : start + block.shape[0]] = True
            return
        block = torch.as_tensor(block)
        chosen = torch.topk(block, self.k, dim=1, largest=False, sorted=False).indices.sort(dim=1).values
        # order the chosen stably, so that ties among them follow gallery index (a tie exactly at the k-th
        # place may still keep either item)
        order = torch.sort(block.gather(1, chosen), dim=1, stable=True).indices
        self._store(start, chosen.gather(1, order))


class RankingCollector(_RowCollector):
    """The whole gallery order per query: (num_query, num_gallery) int32 (4 bytes per pair)."""

    def __init__(self, num_query: int, num_gallery: int):
        super().__init__(num_query, num_gallery, np.int32)

    def update(self, start: int, block: torch.Tensor) -> None:
        self._store(start, torch.sort(torch.as_tensor(block), dim=1, stable=True).indices.to(torch.int32))
