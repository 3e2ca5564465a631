"""Data: tracklet records, the dataset registry and loaders, temporal and identity sampling, clip transforms,
the batch loaders, and a synthetic aerial-ground data generator (`farreid.data.synthetic`)."""

from farreid.data.holdout import holdout_identities
from farreid.data.loader import (
    ClipDataset,
    TrainLoader,
    build_test_loader,
    build_train_loader,
    collate_clips,
    eval_clips,
)
from farreid.data.registry import (
    available_datasets,
    build_dataset,
    build_dataset_from_config,
    register_dataset,
)
from farreid.data.sampler import IdentityBatchSampler
from farreid.data.sampling import SAMPLING_MODES
from farreid.data.scan import verify_frames
from farreid.data.tracklet import (
    PLATFORMS,
    FrameList,
    Protocol,
    ReIDDataset,
    Tracklet,
    TrackletSet,
    stats_table,
)
from farreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipAugment, ClipEval

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PLATFORMS",
    "SAMPLING_MODES",
    "ClipAugment",
    "ClipDataset",
    "ClipEval",
    "FrameList",
    "IdentityBatchSampler",
    "Protocol",
    "ReIDDataset",
    "TrainLoader",
    "Tracklet",
    "TrackletSet",
    "available_datasets",
    "build_dataset",
    "build_dataset_from_config",
    "build_test_loader",
    "build_train_loader",
    "collate_clips",
    "eval_clips",
    "holdout_identities",
    "register_dataset",
    "stats_table",
    "verify_frames",
]
