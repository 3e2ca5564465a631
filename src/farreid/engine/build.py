"""The one place that builds the real training parts from a `Config`: dataset, validation hold-out, loaders and
the model. The data and model packages are imported here, lazily, so the rest of the engine stays generic.

Data checks (identities per batch, stage-1 batch) run before the model is built: building ViT-L takes a while.
"""

from __future__ import annotations

from typing import Any

from farreid.config import Config
from farreid.engine.checks import check_identity_batch, check_stage1_batch
from farreid.engine.distributed import DistContext
from farreid.engine.trainer import TrainingParts


def infer_num_keys(cfg: Config, dataset: Any) -> int:
    """Number of platform-bridge prompt sets: `model.pbp.num_keys`, or what the key type needs for `dataset`
    (every camera id of every split, 2 platforms, or one per altitude/distance bin plus one for unknown)."""
    pbp = cfg.model.pbp
    if pbp.num_keys > 0:
        return pbp.num_keys
    if pbp.key == "camera":
        camids = [t.camid for split in dataset.splits() for t in split]
        return max(camids, default=0) + 1
    if pbp.key == "platform":
        return 2
    bins = pbp.altitude_bins if pbp.key == "altitude" else pbp.distance_bins
    return len(bins) + 2


def build_training_parts(cfg: Config, ctx: DistContext) -> TrainingParts:
    from farreid.data import (
        ClipDataset,
        ClipEval,
        build_dataset_from_config,
        build_train_loader,
        collate_clips,
        eval_clips,
        holdout_identities,
    )
    from farreid.models import FarReID

    data = cfg.data
    dataset = build_dataset_from_config(data)
    train_set, val_query, val_gallery = dataset.train, None, None
    if data.val_ids > 0:
        train_set, val_query, val_gallery = holdout_identities(train_set, data.val_ids, seed=cfg.seed)
    num_classes = train_set.num_pids
    check_identity_batch(num_classes, data.ids_per_batch, data.tracklets_per_id, data.val_ids)
    if "stage1" in cfg.train.stages:
        check_stage1_batch(cfg.train.stage1.batch_size, len(train_set), ctx.world_size)

    size = tuple(cfg.model.image_size)  # the model's input contract: frames are resized to it
    # the stage-1 cache holds one clip per tracklet; validation clips are test clips (dense per eval.dense)
    fixed = data.test_sampling if data.test_sampling != "all" else "segment_begin"
    features = ClipDataset(train_set, size, data.train_frames, fixed, ClipEval(), cfg.seed, data.interpolation)

    def val_clips(tracklets: Any) -> ClipDataset | None:
        return eval_clips(tracklets, data, size, dense=cfg.eval.dense, seed=cfg.seed) if tracklets is not None else None

    model = FarReID(cfg.model, num_classes, infer_num_keys(cfg, dataset))
    return TrainingParts(
        model=model,
        num_classes=num_classes,
        train_loader=build_train_loader(train_set, data, size, seed=cfg.seed, num_replicas=ctx.world_size, rank=ctx.rank),
        feature_dataset=features,
        val_query=val_clips(val_query),
        val_gallery=val_clips(val_gallery),
        collate_fn=collate_clips,
    )
