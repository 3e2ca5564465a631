"""torch.distributed for training launched by `torchrun`: process group from the environment, DDP wrapping,
gathering across ranks (with gradients for the losses, as objects for caches, metrics and RNG states).

Every helper is a no-op for a single process, so the training code has one path.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from farreid.errors import FarreidError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; `world_size == 1` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_context() -> DistContext:
    """The context `torchrun` describes through RANK / WORLD_SIZE / LOCAL_RANK (single process when unset)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise FarreidError(f"bad torch.distributed environment variable: {exc}") from None
    if world > 1 and not os.environ.get("MASTER_ADDR"):
        raise FarreidError("WORLD_SIZE > 1 but MASTER_ADDR is not set: launch multi-process training with torchrun")
    return DistContext(rank, world, local)


def init_distributed(device_type: str = "cpu", timeout_minutes: int = 30) -> DistContext:
    """Join the process group described by the environment: NCCL for CUDA, gloo for the CPU."""
    ctx = env_context()
    if ctx.enabled and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(minutes=timeout_minutes))
    return ctx


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands every rank the summed gradient of its own slice (any backend)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        ctx.rank, ctx.size = rank, tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]


def gather_with_grad(tensor: Tensor, ctx: DistContext) -> Tensor:
    """Concatenate equally sized per-rank tensors along dim 0 in rank order, keeping gradients.

    Every rank then computes the same loss on the global batch; the backward sums each rank's slice gradient
    over ranks (x world size), and DDP's gradient averaging divides it back: gradients equal one process
    holding the whole batch.
    """
    if not ctx.enabled:
        return tensor
    if tensor.requires_grad:
        return _GatherWithGrad.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def average_gradients(params: list[nn.Parameter], ctx: DistContext) -> None:
    """All-reduce mean of gradients, for modules trained without a DDP wrapper (the stage-1 prompt learner)."""
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(ctx.world_size)


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """`obj` from every rank, in rank order (pickled; only for small, trusted in-process values)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's `obj` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_ddp(model: nn.Module, ctx: DistContext, device: torch.device, sync_bn: bool = True) -> nn.Module:
    """DistributedDataParallel around `model` when distributed, else `model`.

    Batch norm becomes SyncBatchNorm on CUDA when `sync_bn` (PyTorch has no CPU SyncBatchNorm, so on the CPU
    every rank normalises with its own batch statistics). Every trainable parameter must take part in the
    loss (the losses keep zero-weight terms in the graph), so unused-parameter search stays off.
    """
    if not ctx.enabled:
        return model
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
