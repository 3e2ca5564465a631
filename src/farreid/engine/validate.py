"""Validation during training on identities held out from the training split (never the test split).

The held-out identities are split into query and gallery tracklets (by the data layer). They are embedded by
`farreid.eval.embedding_sums`, test extraction's own path, with the `eval.*` settings (flip; dense chunks when the
data layer built the clips so), and ranked with `farreid.eval`'s metrics and junk rule, so validation and test
evaluation measure mAP and rank-1 the same way.
"""

from __future__ import annotations

from functools import reduce
from operator import add
from typing import Any, Callable

from torch import Tensor, nn

from farreid.config.schema import EvalConfig
from farreid.engine.batches import sharded_loader
from farreid.engine.distributed import DistContext, all_gather_objects
from farreid.eval.distance import distance_matrix
from farreid.eval.extract import embedding_sums
from farreid.eval.metrics import evaluate_rank
from farreid.eval.ranking import JunkRule
from farreid.utils.device import Precision


def ranking_metrics(
    query: tuple[Tensor, Tensor, Tensor], gallery: tuple[Tensor, Tensor, Tensor], options: EvalConfig | None = None
) -> dict[str, float]:
    """mAP and rank-1 of (features, pids, camids) queries against a gallery (`options.metric`, `options.junk`);
    queries without a positive are skipped.

    Held-out query and gallery tracklets are distinct, so the tracklet junk rule removes nothing here.
    """
    options = options or EvalConfig()
    qf, qp, qc = query
    gf, gp, gc = gallery
    result = evaluate_rank(
        distance_matrix(qf, gf, options.metric), qp.cpu().numpy(), gp.cpu().numpy(), qc.cpu().numpy(),
        gc.cpu().numpy(), junk=JunkRule(options.junk), max_rank=1,
        q_names=[f"q{i}" for i in range(len(qp))], g_names=[f"g{i}" for i in range(len(gp))],
    )
    if result.num_valid == 0:
        return {"mAP": 0.0, "R1": 0.0, "queries": 0}
    return {"mAP": result.mAP, "R1": result.rank(1), "queries": result.num_valid}


def embed_dataset(
    model: nn.Module,
    dataset: Any,
    options: EvalConfig | None = None,
    *,
    precision: Precision,
    ctx: DistContext,
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Embeddings of every tracklet of `dataset` (`num_tracklets` of them; items carry `index`, `pid`, `camid`),
    as test extraction makes them (`options.flip`, `options.batch_size`), with their pids and camids, on the CPU.
    The processes split the items; their sums add up to the same features on every process."""
    options = options or EvalConfig()
    loader = sharded_loader(dataset, rank=ctx.rank, world_size=ctx.world_size, batch_size=options.batch_size,
                            workers=workers, collate_fn=collate_fn)
    was_training = model.training
    model.eval()
    try:
        local = embedding_sums(lambda b: model.embed(b["clip"], model.prompt_keys(b), b.get("mask")), loader,
                               dataset.num_tracklets, precision, flip=options.flip, labels=("pid", "camid"))
    finally:
        model.train(was_training)
    total = reduce(add, all_gather_objects(local, ctx))
    return total.features(), total.labels["pid"], total.labels["camid"]


def validate(
    model: nn.Module,
    query: Any,
    gallery: Any,
    options: EvalConfig | None = None,
    *,
    precision: Precision,
    ctx: DistContext,
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> dict[str, float]:
    """mAP / R1 of held-out query tracklets against the held-out gallery (the same numbers on every process)."""
    kw = dict(precision=precision, ctx=ctx, workers=workers, collate_fn=collate_fn)
    return ranking_metrics(embed_dataset(model, query, options, **kw), embed_dataset(model, gallery, options, **kw),
                           options)
