"""Models: backbone families (`farreid.models.backbone`: CLIP in `models.clip`, SigLIP in `models.siglip`) and
the far-distance video ReID model assembled on their towers."""

from farreid.models.adapters import FrameAdapter, TemporalAdapter, VSLAdapter
from farreid.models.backbone import BackboneFamily, create_backbone, register_family
from farreid.models.clip import CLIP, ClipTokenizer, create_clip
from farreid.models.heads import BNNeckClassifier
from farreid.models.pooling import TemporalPooling
from farreid.models.prompts import PlatformPrompts, keys_from_batch, num_prompt_keys
from farreid.models.reid import FarReID, FrameFeatures, ReIDOutput
from farreid.models.text_prompt import TextPromptLearner

# `build_backbone(name_or_checkpoint, pretrained=..., image_size=...)`: the towers alone, of whichever family.
build_backbone = create_backbone

__all__ = [
    "BNNeckClassifier",
    "BackboneFamily",
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
    "create_backbone",
    "create_clip",
    "keys_from_batch",
    "num_prompt_keys",
    "register_family",
]
