"""The epoch/step loop both stages share: gradient accumulation, AMP loss scaling, clipping, the per-step
schedule, metric records, a progress bar, and a position (epoch, batch, step) that checkpoints restore."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping

import torch
from torch import Tensor, nn

from farreid.engine.distributed import DistContext
from farreid.engine.optim import WarmupCosine
from farreid.errors import FarreidError
from farreid.utils.log import log_metrics, progress


class DivergedError(FarreidError):
    """The loss stopped being a finite number."""


@dataclass
class LoopState:
    """Where a stage is: `batch` micro-batches consumed in `epoch`, `step` optimiser steps in the stage."""

    stage: str
    epoch: int = 0
    batch: int = 0
    step: int = 0
    complete: bool = False
    best_metric: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LoopState":
        return cls(**{**data, "history": [dict(h) for h in data.get("history", [])]})


class Stepper:
    """Turns micro-batch losses into optimiser steps: scale (fp16), accumulate, sync, unscale, clip, step."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: WarmupCosine,
        scaler: torch.amp.GradScaler,
        params: list[nn.Parameter],
        *,
        accum_steps: int = 1,
        grad_clip: float = 0.0,
        before_step: Callable[[], None] | None = None,
    ):
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.params = params
        self.accum_steps = accum_steps
        self.grad_clip = grad_clip
        self.before_step = before_step

    def backward(self, loss: Tensor) -> None:
        self.scaler.scale(loss / self.accum_steps).backward()

    def step(self) -> float | None:
        """Apply the accumulated gradients; returns the gradient norm when clipping."""
        if self.before_step is not None:
            self.before_step()
        norm = None
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


class _Meter:
    """Running sums of loss terms (kept on the device until read) and of samples, for one log interval."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.samples = 0
        self.start = time.perf_counter()

    def add(self, terms: Mapping[str, Tensor], samples: int) -> None:
        for k, v in terms.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1
        self.samples += samples

    def read(self) -> dict[str, float]:
        out = {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out["tracklets_per_s"] = self.samples / elapsed
        return out


class StageLoop:
    """Runs one stage from a `LoopState` to the end (or to `stop_at_step`).

    `batches(epoch, skip)` yields the epoch's micro-batches after the first `skip`; `compute(batch)` returns the
    loss terms (`loss` is the one optimised) and the number of samples in the global batch. `sync(last)` gives
    the context for a micro-batch (DDP `no_sync` unless it is the last of an accumulation). `on_epoch_end` runs
    validation and checkpoints; `save` writes a checkpoint when the run stops early.
    """

    def __init__(
        self,
        *,
        stage: str,
        stepper: Stepper,
        epochs: int,
        steps_per_epoch: int,
        ctx: DistContext,
        logger: logging.Logger,
        log_every: int = 20,
        sync: Callable[[bool], ContextManager] | None = None,
    ):
        self.stage = stage
        self.stepper = stepper
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.ctx = ctx
        self.logger = logger
        self.log_every = log_every
        self.sync = sync or (lambda last: contextlib.nullcontext())
        self.last_metrics: dict[str, float] = {}

    def run(
        self,
        state: LoopState,
        batches: Callable[[int, int], Iterable[Any]],
        compute: Callable[[Any], tuple[Mapping[str, Tensor], int]],
        *,
        on_epoch_end: Callable[[LoopState], None],
        save: Callable[[LoopState], None],
        stop_at_step: int | None = None,
    ) -> bool:
        """Train until the stage is complete (True) or stopped at `stop_at_step` (False)."""
        accum = self.stepper.accum_steps
        per_epoch = self.steps_per_epoch * accum
        bar = progress(total=self.epochs * self.steps_per_epoch, initial=state.step, desc=self.stage) if self.ctx.is_main else None
        interval, epoch_meter = _Meter(), _Meter()
        try:
            while state.epoch < self.epochs:
                for batch in _take(batches(state.epoch, state.batch), per_epoch - state.batch):
                    last = (state.batch + 1) % accum == 0
                    with self.sync(last):
                        terms, samples = compute(batch)
                        self.stepper.backward(terms["loss"])
                    interval.add(terms, samples)
                    epoch_meter.add(terms, samples)
                    state.batch += 1
                    if not last:
                        continue
                    norm = self.stepper.step()
                    state.step += 1
                    self._report(state, interval, norm, bar)
                    if stop_at_step is not None and state.step >= stop_at_step:
                        save(state)
                        return False
                if epoch_meter.count:  # nothing left of an epoch resumed at its very end
                    self._log("epoch", state, epoch_meter.read())
                epoch_meter.reset()
                state.epoch += 1
                state.batch = 0
                on_epoch_end(state)
        finally:
            if bar is not None:
                bar.close()
        state.complete = True
        return True

    def _report(self, state: LoopState, meter: _Meter, norm: float | None, bar: Any) -> None:
        """Progress bar every step (when shown), a metrics record every `log_every` steps."""
        shown = bar is not None and not bar.disable
        due = state.step % self.log_every == 0
        if bar is not None:
            bar.update(1)
        if not (shown or due):
            return
        metrics = meter.read()
        if norm is not None:
            metrics["grad_norm"] = norm
        if shown:
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{self.lr:.2e}", tps=f"{metrics['tracklets_per_s']:.1f}")
        if due:
            self._log("step", state, metrics)
            meter.reset()

    @property
    def lr(self) -> float:
        return max(self.stepper.scheduler.get_last_lr())

    def _log(self, kind: str, state: LoopState, metrics: dict[str, float]) -> None:
        """A metrics record; `kind` ("step" or "epoch", the mean over the epoch) is its message."""
        if not math.isfinite(metrics.get("loss", 0.0)):
            raise DivergedError(
                f"{self.stage}: the loss became {metrics['loss']} by step {state.step}; lower train.{self.stage}.lr, "
                "clip gradients (train.stage2.grad_clip), or use bf16/fp32 instead of fp16"
            )
        self.last_metrics = metrics
        if self.ctx.is_main:
            log_metrics(self.logger, kind, stage=self.stage, epoch=state.epoch + 1, step=state.step, lr=self.lr, **metrics)


def _take(items: Iterable[Any], n: int) -> Iterator[Any]:
    if n <= 0:
        return
    for i, item in enumerate(items):
        yield item
        if i + 1 >= n:
            return
