"""`farreid.engine.train(cfg)`: every check that can fail fast, then the run.

Order matters: configuration ranges, the dataset root, the checkpoint to resume (and its configuration) and the
stage-1 result are all checked before the dataset is indexed or a model is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist

from farreid.config import Config, config_to_dict
from farreid.engine.checkpoint import (
    RESUME_FREE_KEYS,
    STAGE1_KEYS,
    STAGE2_ONLY_MODEL_KEYS,
    CheckpointError,
    CheckpointManager,
    check_config,
    load_checkpoint,
)
from farreid.engine.checks import check_dataset_root, check_identity_batch, check_train_config
from farreid.engine.distributed import DistContext, barrier, init_distributed, shutdown_distributed
from farreid.engine.losses import uses_text
from farreid.engine.trainer import Trainer, TrainingParts, TrainResult
from farreid.errors import FarreidError
from farreid.utils.device import Precision, resolve_device, resolve_precision
from farreid.utils.io import check_output, safe_join
from farreid.utils.log import get_logger, setup_logging
from farreid.utils.run import RunDir, create_run, seed_everything


def train(
    cfg: Config,
    resume: str | Path | None = None,
    *,
    parts: TrainingParts | None = None,
    run_root: str | Path | None = None,
    stop_at: tuple[str, int] | None = None,
    console: bool = True,
) -> TrainResult:
    """Train `cfg` (stage 1 and/or stage 2) into `<out_dir>/<name>/` (or `run_root`).

    `resume` is a checkpoint path or "auto" (the newest checkpoint of the run directory; a fresh start when it
    has none). `parts` replaces what `farreid.engine.build` would build from the config (custom data or models).
    `stop_at=(stage, step)` ends the run early with a checkpoint at that optimiser step of that stage.
    Under `torchrun` every process calls this; rank 0 writes the run directory, logs and checkpoints.
    """
    check_train_config(cfg)
    if parts is None:
        check_dataset_root(cfg.data.root)
    try:
        device = resolve_device(cfg.device)
        precision_name = resolve_precision(cfg.precision, device)
    except (RuntimeError, ValueError) as exc:
        raise FarreidError(f"{exc} (config keys 'device' / 'precision')") from None
    owns_group = not (dist.is_available() and dist.is_initialized())
    ctx = init_distributed(device.type)
    try:
        if device.type == "cuda" and ctx.enabled:
            device = torch.device("cuda", ctx.local_rank)
        precision = Precision(device, precision_name)
        run_path = Path(run_root) if run_root is not None else safe_join(cfg.out_dir, cfg.name)
        check_output(run_path, "dir", option="the run folder (out_dir/name)")
        resume_state = open_resume(cfg, resume, run_path)
        stage1_result = None
        if "stage1" not in cfg.train.stages and (resume_state is None or resume_state["stage"] == "stage1"):
            stage1_result = open_stage1_result(cfg, run_path)
        if parts is None:
            seed_everything(cfg.seed)
            from farreid.engine.build import build_training_parts

            parts = build_training_parts(cfg, ctx)
        else:
            check_identity_batch(parts.num_classes, cfg.data.ids_per_batch, cfg.data.tracklets_per_id, cfg.data.val_ids)
        for state, what in ((resume_state, "resume"), (stage1_result, "stage-1 result")):
            if state is not None and state["num_classes"] != parts.num_classes:
                raise CheckpointError(
                    f"the {what} checkpoint was trained on {state['num_classes']} identities but the training split "
                    f"now has {parts.num_classes}; check data.root, data.dataset and data.val_ids"
                )
        run = _open_run(cfg, run_path, ctx, console)
        logger = get_logger("engine")
        if ctx.is_main:
            logger.info(
                f"training {cfg.name}: stages {'+'.join(cfg.train.stages)}, {parts.num_classes} identities, "
                f"{ctx.world_size} process(es), {precision.device} {precision.name}"
                + (f", resuming {resume_state['stage']} at step {resume_state['loop']['step']}" if resume_state else "")
            )
        trainer = Trainer(cfg, parts, run=run, ctx=ctx, precision=precision)
        result = trainer.fit(resume_state, stage1_result, stop_at)
        barrier(ctx)
        return result
    finally:
        if owns_group:
            shutdown_distributed()


def open_resume(cfg: Config, resume: str | Path | None, run_path: Path) -> Mapping[str, Any] | None:
    """The checkpoint to continue from, checked against `cfg`; refuses to overwrite a run that has checkpoints."""
    manager = CheckpointManager(run_path / "checkpoints")
    latest = manager.latest(cfg.train.stages)
    if resume is None:
        if latest is not None:
            raise FarreidError(
                f"run directory {run_path} already holds checkpoints (newest: {latest.name}); continue it with "
                "--resume auto, or give this run another name (name=...)"
            )
        return None
    if str(resume) == "auto":
        if latest is None:
            return None
        path = latest
    else:
        path = Path(resume)
    state = load_checkpoint(path)
    check_config(state, config_to_dict(cfg), path, remedy=(
        f"To continue it, use the settings in {run_path / 'config.yaml'}; to start afresh, train into another run "
        "folder (name=... or out_dir=...; for `farreid demo`: --fresh, or another --out)."
    ))
    return state


def open_stage1_result(cfg: Config, run_path: Path) -> Mapping[str, Any] | None:
    """The finished stage-1 checkpoint that a stage-2-only run starts from (required when the text losses are on)."""
    configured = cfg.train.stage1_checkpoint
    path = Path(configured) if configured else run_path / "checkpoints" / "stage1.pt"
    if not path.is_file():
        if not uses_text(cfg.train.stage2.loss):
            return None
        source = "config key 'train.stage1_checkpoint'" if configured else "this run's checkpoints"
        raise CheckpointError(
            f"stage 2 needs the stage-1 result (the learned text prompts) but {path} ({source}) does not exist; "
            "run stage 1 first (train.stages=[stage1]), set train.stage1_checkpoint, or switch the text losses off"
        )
    state = load_checkpoint(path)
    if state.get("stage") != "stage1" or not state["loop"]["complete"]:
        raise CheckpointError(f"{path} is not a finished stage-1 result (it is a {state.get('stage')} checkpoint)")
    check_config(state, config_to_dict(cfg), path, only=STAGE1_KEYS, ignore=RESUME_FREE_KEYS + STAGE2_ONLY_MODEL_KEYS,
                 what="start stage 2")
    return state


def _open_run(cfg: Config, run_path: Path, ctx: DistContext, console: bool) -> RunDir:
    """Rank 0 creates the run directory and logs into it; the other ranks only log warnings to the console."""
    if ctx.is_main:
        run = create_run(cfg, run_path, log=True, console=console)
    else:
        run = RunDir(run_path)
        setup_logging(None, level=30, console=console)
    barrier(ctx)
    return run
