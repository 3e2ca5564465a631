"""CLIP image and text towers with OpenAI parameter names, the BPE tokenizer, and local checkpoint readers."""

from farreid.models.clip.checkpoint import CheckpointError, ClipCheckpoint, infer_spec, read_checkpoint
from farreid.models.clip.configs import CLIP_CONFIGS, ClipSpec, TextSpec, VisionSpec, clip_config
from farreid.models.clip.factory import create_clip, describe
from farreid.models.clip.hf import hf_to_openai
from farreid.models.clip.layers import QuickGELU, ResidualAttentionBlock, SelfAttention, SideBranches, Transformer
from farreid.models.clip.model import CLIP
from farreid.models.clip.text import TextTower
from farreid.models.clip.tokenizer import ClipTokenizer
from farreid.models.clip.vision import VisionOutput, VisionTower, resize_pos_embed

__all__ = [
    "CLIP",
    "CLIP_CONFIGS",
    "CheckpointError",
    "ClipCheckpoint",
    "ClipSpec",
    "ClipTokenizer",
    "QuickGELU",
    "ResidualAttentionBlock",
    "SelfAttention",
    "SideBranches",
    "TextSpec",
    "TextTower",
    "Transformer",
    "VisionOutput",
    "VisionSpec",
    "VisionTower",
    "clip_config",
    "create_clip",
    "describe",
    "hf_to_openai",
    "infer_spec",
    "read_checkpoint",
    "resize_pos_embed",
]
