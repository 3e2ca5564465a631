"""SigLIP architectures as data (torch-free): the named towers farreid can build and a folder's config read into one.

SigLIP (Zhai et al. 2023, sigmoid loss) has no CLS token: the image embedding is an attention-pooling head over
the patch tokens, and the text embedding is read at the last position of a fixed-length, padded sequence.
Its blocks are pre-LN like CLIP's, with GELU (tanh approximation) and LayerNorm eps 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

from farreid.errors import FarreidError

ACTIVATION = "gelu_tanh"  # Hugging Face's "gelu_pytorch_tanh"
LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class SiglipVisionSpec:
    width: int
    layers: int
    heads: int
    patch_size: int
    image_size: int  # the square resolution the positional embedding was trained at
    mlp_width: int

    @property
    def output_dim(self) -> int:
        """The attention-pool head keeps the width: SigLIP's image embedding has no projection."""
        return self.width


@dataclass(frozen=True)
class SiglipTextSpec:
    width: int
    layers: int
    heads: int
    mlp_width: int
    output_dim: int
    context_length: int  # every text is padded to this length; the feature is read at its last position
    vocab_size: int
    pad_id: int
    eos_id: int


@dataclass(frozen=True)
class SiglipSpec:
    name: str
    vision: SiglipVisionSpec
    text: SiglipTextSpec | None  # None for a vision-only folder


def _spec(name: str, width: int, layers: int, patch: int, image: int, vocab: int) -> SiglipSpec:
    vision = SiglipVisionSpec(width, layers, width // 64, patch, image, 4 * width)
    return SiglipSpec(name, vision, SiglipTextSpec(width, layers, width // 64, 4 * width, width, 64, vocab, 1, 1))


SIGLIP_CONFIGS: dict[str, SiglipSpec] = {
    spec.name: spec
    for spec in (
        # google/siglip-base-patch16-224's architecture (its folder is read with model.pretrained=<folder>)
        _spec("siglip-base-patch16-224", 768, 12, 16, 224, 32000),
        # The smallest towers with the full structure, for unit tests.
        _spec("siglip-test", 128, 2, 16, 64, 64),
    )
}


def spec_from_hf_config(config: dict, name: str, pad_id: int | None = None, eos_id: int | None = None) -> SiglipSpec:
    """A spec from a `SiglipModel` / `SiglipVisionModel` `config.json`; `pad_id` / `eos_id` are the tokenizer's
    (they override the config's, which Hugging Face's model never reads)."""
    vision_cfg = config.get("vision_config", config if config.get("model_type") == "siglip_vision_model" else None)
    if not isinstance(vision_cfg, dict):
        raise FarreidError(f"{name}: config.json has no vision_config (is this a SiglipModel folder?)")
    text_cfg = config.get("text_config")
    parts = [vision_cfg] + ([text_cfg] if isinstance(text_cfg, dict) else [])
    for part in parts:
        act, eps = part.get("hidden_act", "gelu_pytorch_tanh"), part.get("layer_norm_eps", LAYER_NORM_EPS)
        if act != "gelu_pytorch_tanh" or eps != LAYER_NORM_EPS:
            raise FarreidError(f"{name}: farreid's SigLIP towers use gelu_pytorch_tanh and layer_norm_eps 1e-6; "
                               f"config.json has {act} and {eps}")
    if not vision_cfg.get("vision_use_head", True):
        raise FarreidError(f"{name}: the image tower has no attention-pool head (vision_use_head=false)")
    patch, image = vision_cfg.get("patch_size", 16), vision_cfg.get("image_size", 224)
    if not isinstance(patch, int) or not isinstance(image, int):
        raise FarreidError(f"{name}: farreid reads square SigLIP patches and images (patch_size {patch}, image_size {image})")
    width = vision_cfg.get("hidden_size", 768)
    vision = SiglipVisionSpec(
        width=width,
        layers=vision_cfg.get("num_hidden_layers", 12),
        heads=vision_cfg.get("num_attention_heads", 12),
        patch_size=patch,
        image_size=image,
        mlp_width=vision_cfg.get("intermediate_size", 3072),
    )
    text = None
    if isinstance(text_cfg, dict):
        text_width = text_cfg.get("hidden_size", 768)
        text = SiglipTextSpec(
            width=text_width,
            layers=text_cfg.get("num_hidden_layers", 12),
            heads=text_cfg.get("num_attention_heads", 12),
            mlp_width=text_cfg.get("intermediate_size", 3072),
            output_dim=text_cfg.get("projection_size") or text_width,
            context_length=text_cfg.get("max_position_embeddings", 64),
            vocab_size=text_cfg.get("vocab_size", 32000),
            pad_id=text_cfg.get("pad_token_id", 1) if pad_id is None else pad_id,
            eos_id=_first(text_cfg.get("eos_token_id", 1)) if eos_id is None else eos_id,
        )
        if text.output_dim != vision.output_dim:
            raise FarreidError(f"{name}: text embedding width {text.output_dim} differs from the image's {vision.output_dim}")
    return SiglipSpec(name, vision, text)


def _first(value: int | list[int]) -> int:
    return value[0] if isinstance(value, list) else value
