"""The two-stage trainer: runs stage 1 and/or stage 2 from a config and the parts it trains, with validation,
checkpoints (keep-last-k + best + the stage-1 result) and exact resume."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from farreid.config import Config, config_to_dict
from farreid.engine.batches import sample_seed
from farreid.engine.checkpoint import STAGES, CheckpointManager, capture_rng, restore_rng
from farreid.engine.checks import check_stage1_batch
from farreid.engine.distributed import DistContext, all_gather_objects, average_gradients, broadcast_object, wrap_ddp
from farreid.engine.loop import LoopState, StageLoop, Stepper
from farreid.engine.losses import ReIDCriterion
from farreid.engine.optim import WarmupCosine, adam, trainable_parameters
from farreid.engine.protocols import ResumableLoader
from farreid.engine.stage1 import PromptObjective, cache_features, feature_batches, prompt_parameters
from farreid.engine.stage2 import ReIDObjective, stage2_param_groups, text_table
from farreid.engine.validate import validate
from farreid.errors import FarreidError
from farreid.utils.device import Precision
from farreid.utils.io import atomic_write_json
from farreid.utils.log import get_logger, log_metrics
from farreid.utils.run import RunDir, seed_everything


@dataclass
class TrainingParts:
    """What a training run needs besides the config: built from the config by `farreid.engine.build`, or by hand.

    `train_loader` yields this process's augmented P x K identity batches (a `ResumableLoader`);
    `feature_dataset` holds the training tracklets as deterministic clips (the stage-1 feature cache);
    `val_query` / `val_gallery` the held-out identities (validation; both or neither). Datasets are map-style
    and yield samples that `collate_fn` turns into batch dicts. Training labels are 0..num_classes-1.
    """

    model: nn.Module  # a `farreid.engine.TrainableModel`
    num_classes: int
    train_loader: ResumableLoader
    feature_dataset: Any | None = None
    val_query: Any | None = None
    val_gallery: Any | None = None
    collate_fn: Callable | None = None

    def __post_init__(self) -> None:
        if (self.val_query is None) != (self.val_gallery is None):
            raise ValueError("TrainingParts needs both val_query and val_gallery for validation, or neither")


@dataclass
class TrainResult:
    run_dir: Path
    completed: bool  # False when stopped early (`stop_at`)
    stages: list[str]
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    best: dict[str, float] | None
    validation: list[dict[str, float]] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Trainer:
    """Runs the stages named in `cfg.train.stages` on `parts`, writing into `run`."""

    def __init__(self, cfg: Config, parts: TrainingParts, *, run: RunDir, ctx: DistContext, precision: Precision):
        self.cfg = cfg
        self.parts = parts
        self.run = run
        self.ctx = ctx
        self.precision = precision
        self.logger = get_logger("engine")
        self.config_dict = config_to_dict(cfg)
        self.checkpoints = CheckpointManager(run.checkpoints, cfg.train.keep_last, enabled=ctx.is_main)
        self.last_checkpoint: Path | None = None
        self.final_metrics: dict[str, float] = {}
        parts.model.to(precision.device)

    # ----------------------------------------------------------------------------------------------------------
    def fit(
        self,
        resume: Mapping[str, Any] | None = None,
        stage1_result: Mapping[str, Any] | None = None,
        stop_at: tuple[str, int] | None = None,
    ) -> TrainResult:
        """Run the configured stages, continuing from `resume` (a loaded checkpoint) when given.

        `stage1_result` (a loaded `stage1.pt`) supplies the learned prompts when stage 1 is not run here;
        `stop_at=(stage, step)` stops that stage at that optimiser step with a checkpoint (time-boxed jobs).
        """
        start = time.perf_counter()
        stages = [s for s in STAGES if s in self.cfg.train.stages]
        resume_stage = STAGES.index(resume["stage"]) if resume else -1
        state2: LoopState | None = None
        completed = True
        for stage in stages:
            own = resume if resume is not None and resume["stage"] == stage else None
            if STAGES.index(stage) < resume_stage:
                continue
            if stage == "stage1":
                if own is not None and own["loop"]["complete"]:
                    self.parts.model.prompt_learner.load_state_dict(own["prompt_learner"])
                    stage1_result = own
                    continue
                completed, _ = self._stage1(own, _stop_step(stop_at, stage))
                stage1_result = None  # the prompts are already in the model
            else:
                completed, state2 = self._stage2(own, stage1_result, _stop_step(stop_at, stage))
            if not completed:
                break
        return self._summary(stages, completed, state2, time.perf_counter() - start)

    # ----------------------------------------------------------------------------------------------------------
    def _stage1(self, resume: Mapping[str, Any] | None, stop_at_step: int | None) -> tuple[bool, LoopState]:
        cfg, s1, model = self.cfg, self.cfg.train.stage1, self.parts.model
        if self.parts.feature_dataset is None:
            raise FarreidError("stage 1 needs TrainingParts.feature_dataset (the training tracklets as fixed clips)")
        flags = [(p, p.requires_grad) for p in model.parameters()]
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            params = prompt_parameters(model)
            for p in params:
                p.requires_grad_(True)
            self.logger.info(f"stage1: caching frame-pooled image features of {len(self.parts.feature_dataset)} tracklets")
            features, labels = cache_features(
                model, self.parts.feature_dataset, precision=self.precision, ctx=self.ctx,
                batch_size=self.cfg.eval.batch_size, workers=cfg.data.workers, collate_fn=self.parts.collate_fn,
            )
            check_stage1_batch(s1.batch_size, len(features), self.ctx.world_size)
            steps_per_epoch = len(features) // s1.batch_size
            optimizer = adam(params, lr=s1.lr, weight_decay=s1.weight_decay)
            scheduler = WarmupCosine(optimizer, s1.epochs * steps_per_epoch, s1.warmup_epochs * steps_per_epoch, s1.warmup_factor, s1.min_lr)
            stepper = Stepper(optimizer, scheduler, self.precision.grad_scaler(), params,
                              before_step=lambda: average_gradients(params, self.ctx))
            state = LoopState("stage1")
            if resume is not None:
                model.prompt_learner.load_state_dict(resume["prompt_learner"])
                stepper.load_state_dict(resume)
                state = LoopState.from_dict(resume["loop"])
            loop = StageLoop(stage="stage1", stepper=stepper, epochs=s1.epochs, steps_per_epoch=steps_per_epoch,
                             ctx=self.ctx, logger=self.logger, log_every=cfg.train.log_every)
            objective = PromptObjective(model, features, labels, precision=self.precision, ctx=self.ctx)

            def save(st: LoopState, path: Path | None = None) -> None:
                snapshot = self._snapshot(st, stepper, prompt_learner=model.prompt_learner.state_dict())
                self._write(snapshot, path or self.checkpoints.step_path("stage1", st.step))

            def on_epoch_end(st: LoopState) -> None:
                if st.epoch % cfg.train.checkpoint_every == 0 and st.epoch < s1.epochs:
                    save(st)

            model.train()
            self._start_rng(resume, 1)
            done = loop.run(state, lambda epoch, skip: feature_batches(len(features), s1.batch_size, cfg.seed, epoch, skip),
                            objective, on_epoch_end=on_epoch_end, save=save, stop_at_step=stop_at_step)
            if done:
                save(state, self.checkpoints.stage1_path)
            self.final_metrics = loop.last_metrics
            return done, state
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)

    # ----------------------------------------------------------------------------------------------------------
    def _stage2(
        self, resume: Mapping[str, Any] | None, stage1_result: Mapping[str, Any] | None, stop_at_step: int | None
    ) -> tuple[bool, LoopState]:
        cfg, s2, parts = self.cfg, self.cfg.train.stage2, self.parts
        model = parts.model
        criterion = ReIDCriterion(s2.loss, num_classes=parts.num_classes, feature_dims=model.triplet_feature_dims)
        criterion.to(self.precision.device)
        if resume is not None:
            _load_model(model, resume["model"], "the resumed checkpoint")
            _load_model(criterion, resume.get("criterion", {}), "the resumed checkpoint", what="loss criterion")
        elif stage1_result is not None:
            model.prompt_learner.load_state_dict(stage1_result["prompt_learner"])
        text = None
        if criterion.uses_text:
            text = resume["text_table"] if resume is not None else text_table(model, parts.num_classes, self.precision)
        groups = stage2_param_groups(
            model, lr=s2.lr, weight_decay=s2.weight_decay, bias_lr_factor=s2.bias_lr_factor,
            weight_decay_bias=s2.weight_decay_bias, backbone_lr_mult=cfg.model.finetune_lr_mult, criterion=criterion,
        )
        wrapped = wrap_ddp(model, self.ctx, self.precision.device, cfg.train.sync_bn)
        optimizer = adam(groups)
        loader = parts.train_loader
        steps_per_epoch = len(loader) // s2.accum_steps
        if steps_per_epoch == 0:
            raise FarreidError(
                f"an epoch has {len(loader)} batches, fewer than train.stage2.accum_steps = {s2.accum_steps}; "
                "lower the accumulation or the batch size (data.ids_per_batch)"
            )
        scheduler = WarmupCosine(optimizer, s2.epochs * steps_per_epoch, s2.warmup_epochs * steps_per_epoch, s2.warmup_factor, s2.min_lr)
        # the criterion is outside the DDP wrapper: its gradients (the same on every process, which all evaluate the
        # loss on the gathered batch) are averaged by hand, so the processes' copies cannot drift apart
        learned = list(criterion.parameters())
        stepper = Stepper(optimizer, scheduler, self.precision.grad_scaler(), trainable_parameters(groups),
                          accum_steps=s2.accum_steps, grad_clip=s2.grad_clip,
                          before_step=lambda: average_gradients(learned, self.ctx))
        state = LoopState("stage2")
        if resume is not None:
            stepper.load_state_dict(resume)
            loader.load_state_dict(resume["loader"])
            state = LoopState.from_dict(resume["loop"])
        objective = ReIDObjective(wrapped, criterion, precision=self.precision, ctx=self.ctx, text=text)
        loop = StageLoop(
            stage="stage2", stepper=stepper, epochs=s2.epochs, steps_per_epoch=steps_per_epoch, ctx=self.ctx,
            logger=self.logger, log_every=cfg.train.log_every,
            sync=lambda last: wrapped.no_sync() if (self.ctx.enabled and not last) else contextlib.nullcontext(),
        )

        def snapshot(st: LoopState) -> dict[str, Any]:
            learned_state = criterion.state_dict()  # empty unless a term learns: checkpoints then keep their keys
            extra = {"criterion": learned_state} if learned_state else {}
            return self._snapshot(st, stepper, model=model.state_dict(), **extra, text_table=text, loader=loader.state_dict())

        def epoch_batches(epoch: int, consumed: int) -> ResumableLoader:
            loader.set_epoch(epoch)  # keeps the position of a resumed epoch, so `consumed` batches are not repeated
            return loader

        def save(st: LoopState) -> None:
            self._write(snapshot(st), self.checkpoints.step_path("stage2", st.step))

        def on_epoch_end(st: LoopState) -> None:
            final = st.epoch == s2.epochs
            improved = False
            if parts.val_query is not None and (st.epoch % cfg.train.eval_every == 0 or final):
                metrics = self._validate(model)
                st.history.append({"epoch": st.epoch, **metrics})
                improved = st.best_metric is None or metrics["mAP"] > st.best_metric
                if improved:
                    st.best_metric, st.best_epoch = metrics["mAP"], st.epoch
                if self.ctx.is_main:
                    log_metrics(self.logger, "validation", stage="stage2", epoch=st.epoch,
                                step=st.step, best_mAP=st.best_metric, **metrics)
            st.complete = final
            if final or st.epoch % cfg.train.checkpoint_every == 0 or improved:
                snap = snapshot(st)
                if final or st.epoch % cfg.train.checkpoint_every == 0:
                    self._write(snap, self.checkpoints.step_path("stage2", st.step))
                if improved and self.checkpoints.enabled:
                    self.checkpoints.save(snap, self.checkpoints.best_path)

        model.train()
        self._start_rng(resume, 2)
        done = loop.run(state, epoch_batches, objective, on_epoch_end=on_epoch_end, save=save, stop_at_step=stop_at_step)
        self.final_metrics = loop.last_metrics
        return done, state

    # ----------------------------------------------------------------------------------------------------------
    def _validate(self, model: nn.Module) -> dict[str, float]:
        metrics = validate(
            model, self.parts.val_query, self.parts.val_gallery, self.cfg.eval, precision=self.precision,
            ctx=self.ctx, workers=self.cfg.data.workers, collate_fn=self.parts.collate_fn,
        )
        return broadcast_object(metrics, self.ctx)

    def _start_rng(self, resume: Mapping[str, Any] | None, stream: int) -> None:
        """Fresh stage: seed from (seed, stage, rank). Resumed stage: this rank's saved generator states."""
        if resume is None:
            seed_everything(sample_seed(self.cfg.seed, stream, self.ctx.rank))
            return
        states = resume["rng"]
        if len(states) != self.ctx.world_size and self.ctx.is_main:
            self.logger.warning(
                f"resuming a run checkpointed on {len(states)} process(es) on {self.ctx.world_size}: training continues "
                "but not bit-exactly (the epoch under way is re-split over the processes, random draws differ)"
            )
        restore_rng(states[self.ctx.rank] if len(states) == self.ctx.world_size else states[0])

    def _snapshot(self, state: LoopState, stepper: Stepper, **extra: Any) -> dict[str, Any]:
        """Everything a resume needs; collective (every process contributes its RNG states)."""
        return {
            "stage": state.stage,
            "loop": state.as_dict(),
            **stepper.state_dict(),
            **extra,
            "rng": all_gather_objects(capture_rng(), self.ctx),
            "world_size": self.ctx.world_size,
            "num_classes": self.parts.num_classes,
            "model_info": getattr(self.parts.model, "checkpoint_info", dict)(),  # architecture details (FarReID)
            "config": self.config_dict,
        }

    def _write(self, snapshot: Mapping[str, Any], path: Path) -> None:
        written = self.checkpoints.save(snapshot, path)
        if written is not None:
            self.last_checkpoint = written
            self.logger.info(f"checkpoint written: {written}")

    def _summary(self, stages: list[str], completed: bool, state2: LoopState | None, seconds: float) -> TrainResult:
        best = None
        if state2 is not None and state2.best_metric is not None:
            best = next((h for h in state2.history if h["epoch"] == state2.best_epoch), None)
        result = TrainResult(
            run_dir=self.run.root,
            completed=completed,
            stages=stages,
            last_checkpoint=self.last_checkpoint or self.checkpoints.latest(),
            best_checkpoint=self.checkpoints.best_path if self.checkpoints.best_path.is_file() else None,
            best=best,
            validation=list(state2.history) if state2 is not None else [],
            final_metrics=dict(self.final_metrics),
            seconds=seconds,
        )
        if self.ctx.is_main:
            summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items()}
            atomic_write_json(self.run.results / "train_summary.json", summary)
            shown = {k: v for k, v in self.final_metrics.items() if k in ("loss", "tracklets_per_s")}
            if best:
                shown.update(best_mAP=best["mAP"], best_R1=best["R1"], best_epoch=best["epoch"])
            log_metrics(self.logger, "summary", completed=completed, seconds=round(seconds, 1), **shown)
        return result


def _stop_step(stop_at: tuple[str, int] | None, stage: str) -> int | None:
    return stop_at[1] if stop_at is not None and stop_at[0] == stage else None


def _load_model(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, what: str = "model") -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise FarreidError(f"{source} does not fit the {what} built from the config: {' '.join(first[:3])}") from None
