"""Fixed-order passes over a dataset split across the processes (stage-1 feature cache, validation)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from farreid.engine.distributed import DistContext, all_gather_objects
from farreid.engine.protocols import move_batch
from farreid.utils.device import Precision


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


@torch.no_grad()
def gather_outputs(
    model: nn.Module,
    dataset: Any,
    forward: Callable[[nn.Module, dict], Tensor],
    fields: Sequence[str],
    *,
    precision: Precision,
    ctx: DistContext,
    batch_size: int,
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> tuple[Tensor, ...]:
    """`forward(model, batch)` of every item in eval mode (as float32) followed by the batch entries named in
    `fields`, all on the CPU in dataset order; the processes split the work and every one gets the whole result."""
    loader = sharded_loader(dataset, rank=ctx.rank, world_size=ctx.world_size, batch_size=batch_size,
                            workers=workers, collate_fn=collate_fn)
    was_training = model.training
    model.eval()
    columns: list[list[Tensor]] = [[] for _ in range(1 + len(fields))]
    try:
        for batch in loader:
            batch = move_batch(batch, precision.device)
            with precision.autocast():
                out = forward(model, batch)
            for column, value in zip(columns, [out.float(), *(batch[f] for f in fields)]):
                column.append(value.cpu())
    finally:
        model.train(was_training)
    local = tuple(torch.cat(c) for c in columns) if columns[0] else None
    parts = [p for p in all_gather_objects(local, ctx) if p is not None]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(len(columns)))


def sample_seed(*parts: int) -> int:
    """A well-mixed 32-bit seed from non-negative integers (e.g. run seed, stage, epoch)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
