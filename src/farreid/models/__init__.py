"""Models: CLIP towers (`farreid.models.clip`) and the far-distance video ReID model assembled on them."""

from farreid.models.adapters import FrameAdapter, TemporalAdapter, VSLAdapter
from farreid.models.clip import CLIP, ClipTokenizer, create_clip
from farreid.models.heads import BNNeckClassifier
from farreid.models.pooling import TemporalPooling
from farreid.models.prompts import PlatformPrompts, keys_from_batch, num_prompt_keys
from farreid.models.reid import FarReID, FrameFeatures, ReIDOutput
from farreid.models.text_prompt import TextPromptLearner

# `build_backbone(name_or_checkpoint, pretrained=..., image_size=...)`: the CLIP towers alone.
build_backbone = create_clip

__all__ = [
    "BNNeckClassifier",
    "CLIP",
    "ClipTokenizer",
    "FarReID",
    "FrameAdapter",
    "FrameFeatures",
    "PlatformPrompts",
    "ReIDOutput",
    "TemporalAdapter",
    "TemporalPooling",
    "TextPromptLearner",
    "VSLAdapter",
    "build_backbone",
    "create_clip",
    "keys_from_batch",
    "num_prompt_keys",
]
