"""Training: the two-stage recipe (prompt learning, then adaptation), losses, optimiser groups, schedules, AMP,
torchrun DDP, checkpoints with exact resume, and validation on held-out identities.

    from farreid.config import load_config
    from farreid.engine import train
    result = train(load_config("demo_tiny"), resume="auto")
"""

from farreid.engine.api import open_resume, open_stage1_result, train
from farreid.engine.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from farreid.engine.distributed import DistContext, init_distributed
from farreid.engine.loop import DivergedError, LoopState, StageLoop, Stepper
from farreid.engine.losses import (
    ReIDCriterion,
    batch_hard_triplet,
    centre_loss,
    image_to_text_ce,
    label_smoothed_ce,
    pairwise_distance,
    prompt_loss,
    supcon,
)
from farreid.engine.optim import WarmupCosine, build_param_groups
from farreid.engine.protocols import ResumableLoader, TrainableModel
from farreid.engine.trainer import Trainer, TrainingParts, TrainResult
from farreid.engine.validate import ranking_metrics, validate

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "DistContext",
    "DivergedError",
    "LoopState",
    "ReIDCriterion",
    "ResumableLoader",
    "StageLoop",
    "Stepper",
    "TrainResult",
    "TrainableModel",
    "Trainer",
    "TrainingParts",
    "WarmupCosine",
    "batch_hard_triplet",
    "build_param_groups",
    "centre_loss",
    "image_to_text_ce",
    "init_distributed",
    "label_smoothed_ce",
    "load_checkpoint",
    "open_resume",
    "open_stage1_result",
    "pairwise_distance",
    "prompt_loss",
    "ranking_metrics",
    "save_checkpoint",
    "supcon",
    "train",
    "validate",
]
