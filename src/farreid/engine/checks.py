"""Checks that turn a doomed training run into one clear error before any data is read or model built."""

from __future__ import annotations

from pathlib import Path

from farreid.config import Config, ConfigError
from farreid.errors import FarreidError


def _require(ok: bool, key: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' = {value!r} {rule}")


def check_train_config(cfg: Config) -> None:
    """Ranges the schema's types cannot express (the loader already checks choices and positivity)."""
    t = cfg.train
    _require(len(t.stages) > 0, "train.stages", t.stages, "must name at least one of stage1, stage2")
    _require(len(set(t.stages)) == len(t.stages), "train.stages", t.stages, "must not repeat a stage")
    for name in ("stage1", "stage2"):
        s = getattr(t, name)
        for field in ("weight_decay", "min_lr", "warmup_epochs"):
            _require(getattr(s, field) >= 0, f"train.{name}.{field}", getattr(s, field), "must be >= 0")
        _require(0 < s.warmup_factor <= 1, f"train.{name}.warmup_factor", s.warmup_factor, "must be in (0, 1]")
        _require(s.min_lr <= s.lr, f"train.{name}.min_lr", s.min_lr, f"must not exceed train.{name}.lr = {s.lr}")
        _require(
            s.warmup_epochs < s.epochs, f"train.{name}.warmup_epochs", s.warmup_epochs,
            f"must be smaller than train.{name}.epochs = {s.epochs}",
        )
    s2 = t.stage2
    for field in ("weight_decay_bias", "grad_clip"):
        _require(getattr(s2, field) >= 0, f"train.stage2.{field}", getattr(s2, field), "must be >= 0")
    loss = s2.loss
    weights = ("id_weight", "triplet_weight", "i2t_weight", "supcon_i2t_weight", "supcon_t2i_weight")
    for field in (*weights, "triplet_margin"):
        _require(getattr(loss, field) >= 0, f"train.stage2.loss.{field}", getattr(loss, field), "must be >= 0")
    _require(
        any(getattr(loss, w) > 0 for w in weights), "train.stage2.loss.id_weight", loss.id_weight,
        "and every other loss weight are 0: at least one loss term needs a positive weight",
    )
    _require(0 <= loss.label_smoothing < 1, "train.stage2.loss.label_smoothing", loss.label_smoothing, "must be in [0, 1)")
    _require(cfg.model.finetune_lr_mult >= 0, "model.finetune_lr_mult", cfg.model.finetune_lr_mult, "must be >= 0")
    _require(cfg.data.val_ids >= 0, "data.val_ids", cfg.data.val_ids, "must be >= 0")
    _require(cfg.data.workers >= 0, "data.workers", cfg.data.workers, "must be >= 0")


def check_dataset_root(root: str) -> Path:
    """The dataset folder must exist before anything else happens."""
    if not root:
        raise ConfigError("config key 'data.root' is empty: point it at the dataset folder, e.g. data.root=/data/detreidx")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FarreidError(f"dataset root not found: {path} (config key 'data.root'); check the path or create the data first")
    return path


def check_identity_batch(num_ids: int, ids_per_batch: int, tracklets_per_id: int, val_ids: int = 0) -> None:
    """A batch of P identities x K tracklets (per process) needs P identities in the training split."""
    if ids_per_batch > num_ids:
        held = f" after holding out data.val_ids = {val_ids} for validation" if val_ids else ""
        raise ConfigError(
            f"config key 'data.ids_per_batch' = {ids_per_batch} asks for more identities per batch than the training "
            f"split has ({num_ids}{held}); lower data.ids_per_batch (batch = P x K = "
            f"{ids_per_batch} x {tracklets_per_id}){' or data.val_ids' if val_ids else ''}"
        )


def check_stage1_batch(batch_size: int, num_tracklets: int, world_size: int) -> None:
    if batch_size > num_tracklets:
        raise ConfigError(
            f"config key 'train.stage1.batch_size' = {batch_size} is larger than the training split "
            f"({num_tracklets} tracklets); lower it"
        )
    if batch_size % world_size:
        raise ConfigError(
            f"config key 'train.stage1.batch_size' = {batch_size} must be divisible by the number of processes ({world_size})"
        )
