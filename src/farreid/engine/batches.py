"""Fixed-order passes over a dataset split across the processes (stage-1 feature cache, validation)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import DataLoader, Subset


def shard(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's contiguous share of `indices` (shares differ in length by at most one; rank order = data order)."""
    return [int(i) for i in np.array_split(np.asarray(indices, dtype=np.int64), world_size)[rank]]


def sharded_loader(
    dataset: Any, *, rank: int, world_size: int, batch_size: int, workers: int = 0, collate_fn: Callable | None = None
) -> DataLoader:
    """Batches of this rank's share of `dataset`, in order; the dataset must be deterministic (no augmentation)."""
    return DataLoader(
        Subset(dataset, shard(range(len(dataset)), rank, world_size)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_fn,
    )


def sample_seed(*parts: int) -> int:
    """A well-mixed 32-bit seed from non-negative integers (e.g. run seed, stage, epoch)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
