"""Stage 2: train the image side (adapters, prompts, pooling, last-N blocks, necks, classifiers) with the
identity, triplet and image-text losses against the fixed text features learned in stage 1 (and the criterion's
own learned state, such as the centre loss's identity centres)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from farreid.engine.distributed import DistContext, gather_with_grad
from farreid.engine.losses import ReIDCriterion
from farreid.engine.optim import build_param_groups, named_group_params
from farreid.engine.protocols import Batch, ReIDOutputLike, module_of, move_batch
from farreid.utils.device import Precision


@dataclass
class GatheredOutput:
    """Model outputs of the global batch (all processes, rank order)."""

    logits: list[Tensor]
    triplet_features: list[Tensor]
    projected: Tensor


def gather_output(out: ReIDOutputLike, ctx: DistContext) -> GatheredOutput:
    return GatheredOutput(
        logits=[gather_with_grad(z, ctx) for z in out.logits],
        triplet_features=[gather_with_grad(f, ctx) for f in out.triplet_features],
        projected=gather_with_grad(out.projected, ctx),
    )


@torch.no_grad()
def text_table(model: nn.Module, num_classes: int, precision: Precision, chunk: int = 256) -> Tensor:
    """Text features of every identity (num_classes, d_proj), float32, computed once with the learned prompts."""
    was_training = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, num_classes, chunk):
            labels = torch.arange(start, min(start + chunk, num_classes), device=precision.device)
            with precision.autocast():
                parts.append(model.text_features(labels).float())
        return torch.cat(parts)
    finally:
        model.train(was_training)


def model_groups(model: nn.Module, backbone_lr_mult: float = 1.0) -> tuple[dict[str, list[tuple[str, nn.Parameter]]], dict[str, float]]:
    """`model.parameter_groups()` as ({name: [(param name, param)]}, {name: lr multiplier}).

    Accepts a mapping {name: params} or a list of {"name", "params", optional "param_names", "lr_mult"} dicts
    (what `farreid.models.FarReID` returns). A group's own `lr_mult` wins; a "backbone_tail" group without one
    gets `backbone_lr_mult`.
    """
    raw = model.parameter_groups()
    if isinstance(raw, Mapping):
        items = [(name, params, None) for name, params in raw.items()]
    else:
        items = [
            (g["name"], list(zip(g["param_names"], g["params"])) if "param_names" in g else g["params"], g.get("lr_mult"))
            for g in raw
        ]
    groups, mults = {}, {}
    for name, params, mult in items:
        groups[name] = named_group_params(model, params)
        if mult is not None:
            mults[name] = float(mult)
        elif name == "backbone_tail":
            mults[name] = backbone_lr_mult
    return groups, mults


def stage2_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    bias_lr_factor: float,
    weight_decay_bias: float,
    backbone_lr_mult: float,
    criterion: ReIDCriterion | None = None,
) -> list[dict[str, Any]]:
    """Optimiser groups from `model.parameter_groups()` ("new" at lr, "backbone_tail" at lr x multiplier, biases
    at x `bias_lr_factor`), then the `criterion`'s (its learned loss state, `loss.<term>`). Every model parameter
    outside the groups is frozen."""
    groups, mults = model_groups(model, backbone_lr_mult)
    listed = {id(p) for pairs in groups.values() for _, p in pairs}
    for p in model.parameters():
        if id(p) not in listed:
            p.requires_grad_(False)
    own = build_param_groups(model, groups, lr, weight_decay, bias_lr_factor, weight_decay_bias, mults)
    return own + (criterion.param_groups(lr) if criterion is not None else [])


class ReIDObjective:
    """Loss of one stage-2 batch: forward this process's share, gather the outputs of all processes, and evaluate
    the loss on the whole batch (so P x K mining and the contrastive terms see every identity of the batch)."""

    def __init__(
        self,
        model: nn.Module,
        criterion: ReIDCriterion,
        *,
        precision: Precision,
        ctx: DistContext,
        text: Tensor | None = None,
    ):
        self.model = model  # possibly wrapped in DistributedDataParallel
        self.criterion = criterion
        self.precision = precision
        self.ctx = ctx
        self.text = None if text is None else text.to(precision.device)

    def __call__(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], int]:
        batch: Batch = move_batch(batch, self.precision.device)
        keys = module_of(self.model).prompt_keys(batch)
        with self.precision.autocast():
            out = self.model(batch["clip"], keys, batch.get("mask"))
        pids = gather_with_grad(batch["pid"], self.ctx)
        return self.criterion(gather_output(out, self.ctx), pids, self.text), int(pids.numel())
