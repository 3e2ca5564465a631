"""Validation during training on identities held out from the training split (never the test split).

The held-out identities are split into query and gallery tracklets (by the data layer); gallery items of the
query's identity seen by the same camera are junk with `junk="camera"`. The ranking metrics here are a small
private version for training feedback; `farreid.eval` owns the full evaluation.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.engine.batches import sharded_loader
from farreid.engine.distributed import DistContext, all_gather_objects
from farreid.engine.protocols import move_batch
from farreid.utils.device import Precision


def ranking_metrics(
    query: tuple[Tensor, Tensor, Tensor], gallery: tuple[Tensor, Tensor, Tensor], junk: str = "camera", metric: str = "cosine"
) -> dict[str, float]:
    """mAP and rank-1 of (features, pids, camids) queries against a gallery; queries without a positive are skipped."""
    qf, qp, qc = query
    gf, gp, gc = gallery
    if metric == "cosine":
        dist = 1.0 - F.normalize(qf.float(), dim=1) @ F.normalize(gf.float(), dim=1).t()
    else:
        dist = torch.cdist(qf.float(), gf.float())
    same_pid = qp[:, None] == gp[None, :]
    excluded = same_pid & (qc[:, None] == gc[None, :]) if junk == "camera" else torch.zeros_like(same_pid)
    aps, r1 = [], []
    for q in range(len(qp)):
        keep = ~excluded[q]
        hits = same_pid[q][keep][torch.argsort(dist[q][keep], stable=True)].float()
        if hits.sum() == 0:
            continue
        precision_at_hit = hits.cumsum(0) / torch.arange(1, hits.numel() + 1)
        aps.append(float((precision_at_hit * hits).sum() / hits.sum()))
        r1.append(float(hits[0]))
    if not aps:
        return {"mAP": 0.0, "R1": 0.0, "queries": 0}
    return {"mAP": sum(aps) / len(aps), "R1": sum(r1) / len(r1), "queries": len(aps)}


@torch.no_grad()
def embed_dataset(
    model: nn.Module,
    dataset: Any,
    *,
    precision: Precision,
    ctx: DistContext,
    batch_size: int,
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """`model.embed` of every item (split over the processes, gathered in order): features, pids, camids on the CPU."""
    loader = sharded_loader(dataset, rank=ctx.rank, world_size=ctx.world_size, batch_size=batch_size, workers=workers, collate_fn=collate_fn)
    was_training = model.training
    model.eval()
    feats, pids, cams = [], [], []
    try:
        for batch in loader:
            batch = move_batch(batch, precision.device)
            with precision.autocast():
                emb = model.embed(batch["clip"], model.prompt_keys(batch), batch.get("mask"))
            feats.append(emb.float().cpu())
            pids.append(batch["pid"].cpu())
            cams.append(batch["camid"].cpu())
    finally:
        model.train(was_training)
    local = (torch.cat(feats), torch.cat(pids), torch.cat(cams)) if feats else None
    parts = [p for p in all_gather_objects(local, ctx) if p is not None]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def validate(
    model: nn.Module,
    query: Any,
    gallery: Any,
    *,
    precision: Precision,
    ctx: DistContext,
    batch_size: int,
    junk: str = "camera",
    metric: str = "cosine",
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> dict[str, float]:
    """mAP / R1 of held-out query tracklets against the held-out gallery (the same numbers on every process)."""
    kw = dict(precision=precision, ctx=ctx, batch_size=batch_size, workers=workers, collate_fn=collate_fn)
    return ranking_metrics(embed_dataset(model, query, **kw), embed_dataset(model, gallery, **kw), junk=junk, metric=metric)
