"""Read a Hugging Face `SiglipModel` (or `SiglipVisionModel`) folder: config.json, model.safetensors and, when
present, spiece.model. Weights are renamed to our towers' layout: q/k/v fused into `in_proj_*`, the blocks
named as in the shared `Transformer`. Safetensors only: nothing is unpickled."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import Tensor

from farreid.models.clip.checkpoint import CheckpointError
from farreid.models.siglip.configs import SiglipSpec, spec_from_hf_config
from farreid.models.siglip.tokenizer import SiglipTokenizer

MODEL_TYPES = ("siglip", "siglip_vision_model")
TOKENIZER_FILE = "spiece.model"

_RENAMES = [  # (HF pattern, our replacement), applied in order to each key
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual.patch_embedding."),
    (r"^vision_model\.embeddings\.position_embedding\.weight$", "visual.positional_embedding"),
    (r"^vision_model\.encoder\.layers\.", "visual.transformer.resblocks."),
    (r"^vision_model\.post_layernorm\.", "visual.ln_post."),
    (r"^vision_model\.head\.attention\.", "visual.head."),
    (r"^vision_model\.head\.layernorm\.", "visual.head.ln."),
    (r"^vision_model\.head\.", "visual.head."),  # probe, mlp
    (r"^text_model\.embeddings\.token_embedding\.", "text.token_embedding."),
    (r"^text_model\.embeddings\.position_embedding\.weight$", "text.positional_embedding"),
    (r"^text_model\.encoder\.layers\.", "text.transformer.resblocks."),
    (r"^text_model\.final_layer_norm\.", "text.ln_final."),
    (r"^text_model\.head\.", "text.head."),
    (r"\.self_attn\.out_proj\.", ".attn.out_proj."),
    (r"\.layer_norm1\.", ".ln_1."),
    (r"\.layer_norm2\.", ".ln_2."),
    (r"\.mlp\.fc1\.", ".mlp.c_fc."),
    (r"\.mlp\.fc2\.", ".mlp.c_proj."),
]
_QKV = re.compile(r"^(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$")
_DROPPED = re.compile(r"(^|\.)position_ids$")


@dataclass
class SiglipFolder:
    path: Path
    state: dict[str, Tensor]  # our names, stored dtype
    spec: SiglipSpec
    tokenizer: SiglipTokenizer | None  # None when the folder has no spiece.model


def is_siglip_folder(path: Path) -> bool:
    config = path / "config.json"
    if not (path.is_dir() and config.is_file()):
        return False
    try:
        return json.loads(config.read_text()).get("model_type") in MODEL_TYPES
    except (OSError, ValueError):
        return False


def read_siglip_folder(path: Path) -> SiglipFolder:
    config = json.loads((path / "config.json").read_text())
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        raise CheckpointError(f"{path} is a SigLIP folder without *.safetensors weights (farreid reads no pickles)")
    from safetensors.torch import load_file

    state: dict[str, Tensor] = {}
    try:
        for shard in shards:
            state.update(load_file(str(shard)))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    tokenizer = SiglipTokenizer(path / TOKENIZER_FILE) if (path / TOKENIZER_FILE).is_file() else None
    ids = {"pad_id": tokenizer.pad_id, "eos_id": tokenizer.eos_id} if tokenizer else {}
    spec = spec_from_hf_config(config, str(path), **ids)
    return SiglipFolder(path, hf_to_ours(state), spec, tokenizer)


def hf_to_ours(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a `SiglipModel` state dict and fuse each attention's q/k/v."""
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        if _DROPPED.search(key):
            continue
        match = _QKV.match(key)
        if match:
            block, which, kind = match.groups()
            qkv.setdefault((block, kind), {})[which] = value
            continue
        out[_rename(key)] = value
    for (block, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointError(f"attention weights of {block} are incomplete (have {sorted(parts)} of q, k, v)")
        out[f"{_rename(block)}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def _rename(key: str) -> str:
    for pattern, repl in _RENAMES:
        key = re.sub(pattern, repl, key)
    return key
