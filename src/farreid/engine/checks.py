"""Checks that turn a doomed training run into one clear error before any data is read or model built."""

from __future__ import annotations

from pathlib import Path

from farreid.config import Config, ConfigError, validate_config
from farreid.errors import FarreidError


def check_train_config(cfg: Config) -> None:
    """Every range and relation of the schema (a config built in Python has not been through the loader)."""
    validate_config(cfg, "the training configuration")


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
