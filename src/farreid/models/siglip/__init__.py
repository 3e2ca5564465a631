"""SigLIP image and text towers (no CLS token: an attention-pool head), their SentencePiece tokenizer, and the
reader of Hugging Face `SiglipModel` folders."""

from farreid.models.siglip.configs import SIGLIP_CONFIGS, SiglipSpec, SiglipTextSpec, SiglipVisionSpec
from farreid.models.siglip.model import SigLIP
from farreid.models.siglip.tokenizer import SiglipTokenizer

__all__ = ["SIGLIP_CONFIGS", "SigLIP", "SiglipSpec", "SiglipTextSpec", "SiglipTokenizer", "SiglipVisionSpec"]
