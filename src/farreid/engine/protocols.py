"""What the engine needs from a model, a batch and a training loader, written as structural types.

The engine is generic over these: the real `farreid.models.FarReID` and the data layer's `TrainLoader` fit
them, and so do the small stand-ins in the tests. Nothing here imports the model or data packages.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence, Union, runtime_checkable

import torch
from torch import Tensor, nn

Batch = dict[str, Tensor]
"""A collated clip batch: `clip` (B, T, 3, H, W), `mask` (B, T), `pid`, `camid`, `platform`, `altitude`,
`distance`, `index` (B,), as `farreid.data.collate_clips` makes it."""

NamedParams = Iterable[Union[nn.Parameter, tuple[str, nn.Parameter]]]


class ReIDOutputLike(Protocol):
    """The training outputs of one forward pass."""

    logits: list[Tensor]  # (B, num_classes) per BNNeck classifier
    triplet_features: list[Tensor]  # (B, D_i) pooled features for the metric loss
    projected: Tensor  # (B, d_proj) pooled projected CLS, compared with text features


@runtime_checkable
class TrainableModel(Protocol):
    """A video ReID model trainable by the two-stage recipe (an `nn.Module`)."""

    prompt_learner: nn.Module  # the identity text prompts learned in stage 1
    triplet_feature_dims: tuple[int, ...]  # widths of the output's `triplet_features` (they size learned loss state)

    def __call__(self, clip: Tensor, keys: Tensor, mask: Tensor | None = None) -> ReIDOutputLike: ...

    def embed(self, clip: Tensor, keys: Tensor, mask: Tensor | None = None) -> Tensor: ...

    def prompt_keys(self, batch: Batch) -> Tensor: ...

    def frame_pooled_projection(self, clip: Tensor, mask: Tensor | None = None) -> Tensor: ...

    def text_features(self, labels: Tensor) -> Tensor: ...

    def parameter_groups(self) -> Mapping[str, NamedParams] | Sequence[Mapping[str, Any]]:
        """{"new": params, "backbone_tail": params}, or a list of {"name", "params", "param_names", "lr_mult"}."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, nn.Parameter]]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class ResumableLoader(Protocol):
    """Training batches of one process, epoch by epoch, resumable mid-epoch (the data layer's `TrainLoader`).

    `set_epoch(e)` starts epoch `e` from its beginning, except that it keeps the position of the epoch already
    under way (so a loader restored with `load_state_dict` continues where it stopped); iterating yields the
    epoch's remaining batches; `len()` is the number of batches of a whole epoch; `state_dict()` records the
    epoch and how many batches the caller has consumed. The clips must not depend on anything else (no global
    RNG), so a resumed run sees exactly the batches it would have seen.
    """

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def module_of(model: Any) -> nn.Module:
    """The model itself when `model` is wrapped (DistributedDataParallel), else `model`."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def move_batch(batch: Mapping[str, Any], device: torch.device) -> Batch:
    """Tensors of a batch on `device` (non-blocking from pinned memory); other entries unchanged."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}
