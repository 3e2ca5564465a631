"""Validation during training on identities held out from the training split (never the test split).

The held-out identities are split into query and gallery tracklets (by the data layer); gallery items of the
query's identity seen by the same camera are junk with `junk="camera"`. The numbers are `farreid.eval`'s
(`evaluate_rank`), so validation and test evaluation share one definition of mAP and rank-1.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from farreid.engine.batches import gather_outputs
from farreid.engine.distributed import DistContext
from farreid.eval.distance import distance_matrix
from farreid.eval.metrics import evaluate_rank
from farreid.utils.device import Precision


def ranking_metrics(
    query: tuple[Tensor, Tensor, Tensor], gallery: tuple[Tensor, Tensor, Tensor], junk: str = "camera", metric: str = "cosine"
) -> dict[str, float]:
    """mAP and rank-1 of (features, pids, camids) queries against a gallery; queries without a positive are skipped.

    Held-out query and gallery tracklets are distinct, so `junk="tracklet"` removes nothing here.
    """
    qf, qp, qc = query
    gf, gp, gc = gallery
    names = {}
    if junk == "tracklet":
        names = {"q_names": [f"q{i}" for i in range(len(qp))], "g_names": [f"g{i}" for i in range(len(gp))]}
    result = evaluate_rank(
        distance_matrix(qf, gf, metric), qp.cpu().numpy(), gp.cpu().numpy(), qc.cpu().numpy(), gc.cpu().numpy(),
        junk=junk, max_rank=1, **names,
    )
    if result.num_valid == 0:
        return {"mAP": 0.0, "R1": 0.0, "queries": 0}
    return {"mAP": result.mAP, "R1": result.rank(1), "queries": result.num_valid}


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
    features, pids, camids = gather_outputs(
        model, dataset, lambda m, b: m.embed(b["clip"], m.prompt_keys(b), b.get("mask")), ("pid", "camid"),
        precision=precision, ctx=ctx, batch_size=batch_size, workers=workers, collate_fn=collate_fn,
    )
    return features, pids, camids


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
