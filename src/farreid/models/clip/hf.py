"""Hugging Face `CLIPModel` weights -> OpenAI names (the layout our towers use), and its config -> a spec.

HF splits attention into q/k/v projections and renames layers; OpenAI fuses q/k/v into `in_proj_*` and
stores both projections as (width, out) matrices where HF keeps `nn.Linear` weights (out, width).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from farreid.errors import FarreidError
from farreid.models.clip.configs import ClipSpec, TextSpec, VisionSpec

HF_VISION_MARKER = "vision_model.embeddings.patch_embedding.weight"

_RENAMES = [  # (HF pattern, OpenAI replacement), applied in order to each key
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual.conv1."),
    (r"^vision_model\.embeddings\.class_embedding$", "visual.class_embedding"),
    (r"^vision_model\.embeddings\.position_embedding\.weight$", "visual.positional_embedding"),
    (r"^vision_model\.pre_layrnorm\.", "visual.ln_pre."),
    (r"^vision_model\.post_layernorm\.", "visual.ln_post."),
    (r"^vision_model\.encoder\.layers\.", "visual.transformer.resblocks."),
    (r"^text_model\.embeddings\.token_embedding\.", "token_embedding."),
    (r"^text_model\.embeddings\.position_embedding\.weight$", "positional_embedding"),
    (r"^text_model\.encoder\.layers\.", "transformer.resblocks."),
    (r"^text_model\.final_layer_norm\.", "ln_final."),
    (r"\.self_attn\.out_proj\.", ".attn.out_proj."),
    (r"\.layer_norm1\.", ".ln_1."),
    (r"\.layer_norm2\.", ".ln_2."),
    (r"\.mlp\.fc1\.", ".mlp.c_fc."),
    (r"\.mlp\.fc2\.", ".mlp.c_proj."),
]
_QKV = re.compile(r"^(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$")
_DROPPED = re.compile(r"(^|\.)position_ids$")  # a buffer older transformers versions saved


def is_hf_state_dict(state: dict[str, Tensor]) -> bool:
    return HF_VISION_MARKER in state


def hf_to_openai(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename and fuse a `CLIPModel` / `CLIPVisionModel` state dict into OpenAI's layout."""
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        if _DROPPED.search(key):
            continue
        if key == "visual_projection.weight":
            out["visual.proj"] = value.t().contiguous()
            continue
        if key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()
            continue
        match = _QKV.match(key)
        if match:
            block, which, kind = match.groups()
            qkv.setdefault((block, kind), {})[which] = value
            continue
        new = key
        for pattern, repl in _RENAMES:
            new = re.sub(pattern, repl, new)
        out[new] = value
    for (block, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise FarreidError(f"attention weights of {block} are incomplete (have {sorted(parts)} of q, k, v)")
        fused = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        new = block
        for pattern, repl in _RENAMES:
            new = re.sub(pattern, repl, new)
        out[f"{new}.attn.in_proj_{kind}"] = fused
    return out


def spec_from_hf_config(config: dict, name: str) -> ClipSpec:
    """A spec from a `CLIPModel` (or `CLIPVisionModel`) `config.json` mapping."""
    vision_cfg = config.get("vision_config", config if config.get("model_type") == "clip_vision_model" else None)
    if not isinstance(vision_cfg, dict):
        raise FarreidError(f"{name}: config.json has no vision_config (is this a CLIPModel directory?)")
    text_cfg = config.get("text_config")
    acts = {vision_cfg.get("hidden_act", "quick_gelu")}
    if isinstance(text_cfg, dict):
        acts.add(text_cfg.get("hidden_act", "quick_gelu"))
    if len(acts) != 1 or not acts <= {"quick_gelu", "gelu"}:
        raise FarreidError(f"{name}: unsupported hidden_act {sorted(acts)} (farreid supports quick_gelu or gelu, same in both towers)")
    projection_dim = config.get("projection_dim", vision_cfg.get("projection_dim", 512))
    vision = VisionSpec(
        width=vision_cfg.get("hidden_size", 768),
        layers=vision_cfg.get("num_hidden_layers", 12),
        heads=vision_cfg.get("num_attention_heads", 12),
        patch_size=vision_cfg.get("patch_size", 32),
        image_size=vision_cfg.get("image_size", 224),
        mlp_width=vision_cfg.get("intermediate_size", 3072),
        output_dim=projection_dim,
    )
    text = None
    if isinstance(text_cfg, dict):
        text = TextSpec(
            width=text_cfg.get("hidden_size", 512),
            layers=text_cfg.get("num_hidden_layers", 12),
            heads=text_cfg.get("num_attention_heads", 8),
            mlp_width=text_cfg.get("intermediate_size", 2048),
            output_dim=projection_dim,
            context_length=text_cfg.get("max_position_embeddings", 77),
            vocab_size=text_cfg.get("vocab_size", 49408),
        )
    return ClipSpec(name, vision, text, activation=acts.pop())
