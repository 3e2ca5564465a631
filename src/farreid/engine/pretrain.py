"""The pretraining stage: CLIP's symmetric image-text contrastive objective over both towers, on captioned
synthetic renders, so that the demo starts from a vision-language model as the paper starts from OpenAI CLIP.

It runs in the engine's shared loop (`StageLoop`: progress, metric records, exact stop/resume positions) with
the engine's checkpoints (`pretrain-step*.pt`, same format and resume rules as stages 1 and 2). Each epoch ends
with the zero-shot attribute check on held-out people; the finished towers are written as an OpenAI-named
state dict (`pretrain.output`, safetensors, fp16 like OpenAI's files) that `model.pretrained` reads like any
CLIP checkpoint.

    from farreid.engine.pretrain import pretrain
    result = pretrain(load_config("pretrain_tiny"), resume="auto")
    result.towers  # runs/pretrain_tiny/towers.safetensors
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.config import Config, config_to_dict
from farreid.engine.batches import sample_seed
from farreid.engine.checkpoint import CheckpointError, CheckpointManager, capture_rng, check_config, load_checkpoint, restore_rng
from farreid.engine.distributed import DistContext, all_gather_objects, average_gradients, barrier, gather_with_grad, init_distributed, shutdown_distributed
from farreid.engine.loop import LoopState, StageLoop, Stepper
from farreid.engine.optim import WarmupCosine
from farreid.errors import FarreidError
from farreid.utils.device import Precision, resolve_device, resolve_precision
from farreid.utils.io import atomic_open, atomic_write_json, safe_join
from farreid.utils.log import get_logger, log_metrics
from farreid.utils.run import RunDir, create_run, seed_everything

STAGE = "pretrain"
PRETRAIN_STREAM = 3  # seed stream of the pretraining batch order and augmentation
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of the learned temperature
# What a pretraining resume must share with the checkpoint (the ReID stages' keys do not shape it).
PRETRAIN_KEYS = ("seed", "model.backbone", "model.pretrained", "model.activation", "model.pos_resize",
                 "model.image_size", "data.interpolation", "data.aug", "pretrain")


@dataclass
class PretrainResult:
    run_dir: Path
    completed: bool
    towers: Path | None  # the OpenAI-named state dict, when completed
    sha256: str | None
    zero_shot: dict[str, float] = field(default_factory=dict)  # the last epoch's held-out check
    seconds: float = 0.0


def contrastive_loss(image: Tensor, text: Tensor, logit_scale: Tensor) -> dict[str, Tensor]:
    """CLIP's symmetric cross-entropy: the i-th image and the i-th caption are the positive pair of each row and
    column of the scaled cosine-similarity matrix."""
    image, text = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    logits = scale * image @ text.T
    target = torch.arange(len(logits), device=logits.device)
    i2t, t2i = F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)
    return {"loss": (i2t + t2i) / 2, "i2t": i2t, "t2i": t2i, "temperature": 1 / scale.detach()}


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as in CLIP: matrices decay; gains, biases, embeddings of positions/classes and the temperature
    do not."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        flat = p.ndim < 2 or "embedding" in name or name.endswith("logit_scale")
        (keep if flat else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


class CaptionBatches:
    """One epoch's batches of (corpus index, augmentation seed): a seeded permutation cut into full batches."""

    def __init__(self, num: int, batch_size: int, seed: int):
        self.num, self.batch_size, self.seed = num, batch_size, seed

    def __len__(self) -> int:
        return self.num // self.batch_size

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[Tensor, int]]:
        g = torch.Generator().manual_seed(sample_seed(self.seed, PRETRAIN_STREAM, epoch))
        order = torch.randperm(self.num, generator=g)
        for b in range(skip, len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size], sample_seed(self.seed, PRETRAIN_STREAM, epoch, b)


class ContrastiveObjective:
    """Loss of one batch: each process encodes its share; features are gathered (with gradients) so every
    process evaluates the loss over the whole batch, as one process holding it would."""

    def __init__(self, clip: nn.Module, images: Tensor, tokens: Tensor, augment: Any, platforms: list[str], *,
                 precision: Precision, ctx: DistContext):
        self.clip, self.images, self.tokens, self.augment, self.platforms = clip, images, tokens, augment, platforms
        self.precision, self.ctx = precision, ctx

    def __call__(self, batch: tuple[Tensor, int]) -> tuple[dict[str, Tensor], int]:
        index, seed = batch
        mine = index.tensor_split(self.ctx.world_size)[self.ctx.rank]
        g = torch.Generator().manual_seed(seed + self.ctx.rank)
        images = torch.cat([self.augment(self.images[i : i + 1], self.platforms[i], g) for i in mine.tolist()])
        tokens = self.tokens[mine]
        tokens = tokens[:, : int(tokens.argmax(dim=1).max()) + 1]  # causal tower: padding after EOT changes nothing
        device = self.precision.device
        with self.precision.autocast():
            image = self.clip.encode_image(images.to(device))
            text = self.clip.encode_text(tokens.to(device))
        image, text = gather_with_grad(image.float(), self.ctx), gather_with_grad(text.float(), self.ctx)
        return contrastive_loss(image, text, self.clip.logit_scale), int(index.numel())


def _writable_folder(folder: Path, what: str) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise FarreidError(f"cannot write {what} into {folder}: {probe} is not a writable folder")


def check_outputs(cfg: Config, run_path: Path, export: Path | None) -> Path:
    """Where the towers go (the run directory's `pretrain.output`, and `export` when given); refused before any
    work when a place cannot be written."""
    name = cfg.pretrain.output
    if not name or Path(name).name != name or not name.endswith(".safetensors"):
        raise FarreidError(f"pretrain.output must be a file name ending in .safetensors (written into the run "
                           f"directory); got {name!r}")
    _writable_folder(run_path, "the pretraining run (choose another out_dir)")
    if export is not None:
        if export.is_dir():
            raise FarreidError(f"--out {export} is a folder; give the file to write, e.g. {export / name}")
        if not export.parent.is_dir():
            raise FarreidError(f"--out {export}: the folder {export.parent} does not exist; create it first")
        if export.suffix != ".safetensors":
            raise FarreidError(f"--out {export}: the towers are written as safetensors; name the file *.safetensors")
        _writable_folder(export.parent, f"--out {export.name}")
    return run_path / name


def save_towers(clip: nn.Module, path: Path) -> str:
    """Write the OpenAI-named state dict (fp16, as OpenAI ships CLIP) atomically; returns its sha256."""
    from safetensors.torch import save

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in clip.openai_state_dict().items()}
    data = save(state, metadata={"format": "pt"})  # one key: safetensors orders several at random
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def pretrain(cfg: Config, resume: str | Path | None = None, *, export: str | Path | None = None,
             console: bool = True, stop_at: int | None = None) -> PretrainResult:
    """Pretrain `cfg.model.backbone`'s towers into `<out_dir>/<name>/`; `resume` a checkpoint path or "auto";
    `export` a further file to write the finished towers to; `stop_at` ends early at that optimiser step with a
    checkpoint. Under torchrun every process calls this."""
    from farreid.data.synthetic.corpus import render_corpus
    from farreid.data.transforms import ClipAugment
    from farreid.eval.zeroshot import zero_shot_attributes
    from farreid.models.clip.factory import create_clip
    from farreid.models.clip.tokenizer import ClipTokenizer

    started = time.perf_counter()
    p = cfg.pretrain
    try:
        device = resolve_device(cfg.device)
        precision = Precision(device, resolve_precision(cfg.precision, device))
    except (RuntimeError, ValueError) as exc:
        raise FarreidError(f"{exc} (config keys 'device' / 'precision')") from None
    run_path = safe_join(cfg.out_dir, cfg.name)
    export = Path(export).expanduser() if export is not None else None
    towers_path = check_outputs(cfg, run_path, export)
    manager = CheckpointManager(run_path / "checkpoints", cfg.train.keep_last)
    state = _open_resume(cfg, resume, manager, run_path)
    # the towers (and a named backbone that disagrees with model.pretrained) before the corpus is rendered
    seed_everything(cfg.seed)
    clip = create_clip(cfg.model.backbone, cfg.model.pretrained, None, cfg.model.stride or None, cfg.model.pos_resize,
                       cfg.model.activation, cfg.model.allow_torchscript)
    if clip.text is None:
        raise FarreidError(f"backbone {cfg.model.backbone!r} has no text tower to pretrain")
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ctx = init_distributed(device.type)
    try:
        if p.batch_size % ctx.world_size:
            raise FarreidError(f"pretrain.batch_size={p.batch_size} must divide over {ctx.world_size} processes")
        size = tuple(cfg.model.image_size)
        corpus = render_corpus(p.num_ids, p.images_per_id, cfg.seed, size, "train", cfg.data.interpolation)
        heldout = render_corpus(p.heldout_ids, p.heldout_images_per_id, cfg.seed, size, "heldout", cfg.data.interpolation)
        if len(corpus) < p.batch_size:
            raise FarreidError(f"the corpus has {len(corpus)} images, fewer than pretrain.batch_size={p.batch_size}")
        tokenizer = ClipTokenizer.from_path()
        tokens = tokenizer(corpus.captions, context_length=clip.text.context_length)
        run = create_run(cfg, run_path, log=ctx.is_main, console=console) if ctx.is_main else RunDir(run_path)
        barrier(ctx)
        logger = get_logger("engine")
        clip.to(device)
        optimizer = torch.optim.AdamW(decay_groups(clip, p.weight_decay), lr=p.lr, foreach=True)
        batches = CaptionBatches(len(corpus), p.batch_size, cfg.seed)
        steps = len(batches)
        scheduler = WarmupCosine(optimizer, p.epochs * steps, p.warmup_epochs * steps, p.warmup_factor, p.min_lr)
        params = [q for q in clip.parameters() if q.requires_grad]
        stepper = Stepper(optimizer, scheduler, precision.grad_scaler(), params,
                          before_step=lambda: average_gradients(params, ctx))
        loop_state = LoopState(STAGE)
        if state is not None:
            clip.load_state_dict(state["model"])
            stepper.load_state_dict(state)
            loop_state = LoopState.from_dict(state["loop"])
            restore_rng(state["rng"][ctx.rank] if len(state["rng"]) == ctx.world_size else state["rng"][0])
        else:
            seed_everything(sample_seed(cfg.seed, PRETRAIN_STREAM, ctx.rank))
        if ctx.is_main:
            logger.info(f"pretraining {cfg.model.backbone} towers on {len(corpus)} captioned renders of {p.num_ids} "
                        f"people ({steps} steps an epoch, {precision.device} {precision.name})"
                        + (f", resuming at step {loop_state.step}" if state is not None else ""))
        objective = ContrastiveObjective(clip, corpus.images, tokens, ClipAugment(cfg.data.aug),
                                         [a["platform"] for a in corpus.attributes], precision=precision, ctx=ctx)
        loop = StageLoop(stage=STAGE, stepper=stepper, epochs=p.epochs, steps_per_epoch=steps, ctx=ctx,
                         logger=logger, log_every=cfg.train.log_every)
        config_dict = config_to_dict(cfg)

        def save(st: LoopState) -> None:
            snapshot = {"stage": STAGE, "loop": st.as_dict(), **stepper.state_dict(), "model": clip.state_dict(),
                        "rng": all_gather_objects(capture_rng(), ctx), "world_size": ctx.world_size,
                        "config": config_dict}
            written = manager.save(snapshot, manager.step_path(STAGE, st.step)) if ctx.is_main else None
            if written is not None:
                logger.info(f"checkpoint written: {written}")

        def on_epoch_end(st: LoopState) -> None:
            if ctx.is_main:
                metrics = zero_shot_attributes(clip, tokenizer, heldout.images, heldout.attributes, device)
                st.history.append({"epoch": st.epoch, **metrics})
                log_metrics(logger, "validation", stage=STAGE, epoch=st.epoch, step=st.step, **metrics)
            st.complete = st.epoch == p.epochs
            if st.complete or st.epoch % cfg.train.checkpoint_every == 0:
                save(st)

        clip.train()
        done = loop.run(loop_state, batches.epoch, objective, on_epoch_end=on_epoch_end, save=save,
                        stop_at_step=stop_at)
        digest, zero_shot = None, dict(loop_state.history[-1]) if loop_state.history else {}
        if done and ctx.is_main:
            digest = save_towers(clip, towers_path)
            if export is not None:
                save_towers(clip, export)
            summary = {"towers": str(towers_path), "sha256": digest, "zero_shot": zero_shot,
                       "history": loop_state.history, "seconds": round(time.perf_counter() - started, 1)}
            atomic_write_json(run.results / "pretrain_summary.json", summary)
            log_metrics(logger, "summary", stage=STAGE, sha256=digest, **zero_shot)
        barrier(ctx)
        return PretrainResult(run_path, done, towers_path if done else None, digest, zero_shot,
                              time.perf_counter() - started)
    finally:
        if owns_group:
            shutdown_distributed()


def _open_resume(cfg: Config, resume: str | Path | None, manager: CheckpointManager,
                 run_path: Path) -> Mapping[str, Any] | None:
    latest = manager.latest((STAGE,))
    if resume is None:
        if latest is not None:
            raise FarreidError(f"run directory {run_path} already holds pretraining checkpoints (newest: {latest.name}); "
                               "continue it with --resume auto, or give this run another name (name=...)")
        return None
    if str(resume) == "auto" and latest is None:
        return None
    path = latest if str(resume) == "auto" else Path(resume)
    state = load_checkpoint(path)
    if state.get("stage") != STAGE:
        raise CheckpointError(f"{path} is a {state.get('stage')} checkpoint, not a pretraining one")
    check_config(state, config_to_dict(cfg), path, only=PRETRAIN_KEYS, ignore=())
    return state
