"""Stage 1: learn the identity text prompts against frame-pooled CLIP image features computed once.

The image side is frozen and run once (adapters and prompts off, no gradient) to cache one feature per training
tracklet; the loop then only runs the prompt learner and the frozen text tower.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from farreid.engine.batches import gather_outputs, sample_seed
from farreid.engine.distributed import DistContext, gather_with_grad
from farreid.engine.losses import prompt_loss
from farreid.utils.device import Precision

STAGE1_STREAM = 1  # seed stream of the stage-1 feature order (stage-2 batches come from the training loader)


def cache_features(
    model: nn.Module,
    dataset: Any,
    *,
    precision: Precision,
    ctx: DistContext,
    batch_size: int,
    workers: int = 0,
    collate_fn: Callable | None = None,
) -> tuple[Tensor, Tensor]:
    """`frame_pooled_projection` of every item (features (N, d) float32 and labels (N,), on the CPU, in dataset
    order); the processes split the work and every one gets the whole cache."""
    features, labels = gather_outputs(
        model, dataset, lambda m, b: m.frame_pooled_projection(b["clip"], b.get("mask")), ("pid",),
        precision=precision, ctx=ctx, batch_size=batch_size, workers=workers, collate_fn=collate_fn,
    )
    return features, labels


def feature_batches(num: int, batch_size: int, seed: int, epoch: int, skip: int = 0) -> Iterator[Tensor]:
    """Global index batches of one epoch: a seeded permutation cut into full batches (the remainder dropped)."""
    order = torch.randperm(num, generator=torch.Generator().manual_seed(sample_seed(seed, STAGE1_STREAM, epoch)))
    for b in range(skip, num // batch_size):
        yield order[b * batch_size : (b + 1) * batch_size]


class PromptObjective:
    """Loss of one stage-1 batch: each process computes the text features of its share of the labels; they are
    gathered (with gradients) so every process evaluates the loss on the whole batch."""

    def __init__(self, model: nn.Module, features: Tensor, labels: Tensor, *, precision: Precision, ctx: DistContext):
        self.model = model
        self.features = features.to(precision.device)
        self.labels = labels.to(precision.device)
        self.precision = precision
        self.ctx = ctx

    def __call__(self, index: Tensor) -> tuple[dict[str, Tensor], int]:
        index = index.to(self.precision.device)
        mine = index.tensor_split(self.ctx.world_size)[self.ctx.rank]
        with self.precision.autocast():
            text = self.model.text_features(self.labels[mine])
        text = gather_with_grad(text.float(), self.ctx)
        return prompt_loss(self.features[index], text, self.labels[index]), int(index.numel())


def prompt_parameters(model: nn.Module) -> list[nn.Parameter]:
    params = list(model.prompt_learner.parameters())
    if not params:
        raise ValueError("the model's prompt_learner has no parameters to learn in stage 1")
    return params
