"""Read a local CLIP checkpoint of any supported kind into OpenAI-named tensors plus the inferred architecture.

Supported: OpenAI's TorchScript archives (read as data unless `allow_torchscript`), OpenAI-style state
dicts, open_clip checkpoints (`{"state_dict": ...}`, with or without DistributedDataParallel's `module.`),
safetensors files, and Hugging Face `CLIPModel` directories (`config.json` + safetensors or bin).
Nothing here unpickles arbitrary objects: plain files go through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import Tensor

from farreid.errors import FarreidError
from farreid.models.clip.configs import ClipSpec, TextSpec, VisionSpec, check_activation
from farreid.models.clip.hf import hf_to_openai, is_hf_state_dict, spec_from_hf_config
from farreid.models.clip.shipped import SHIPPED, resolve_pretrained
from farreid.models.clip.torchscript import is_torchscript_archive, read_torchscript_tensors

EXPECTED = (
    "an OpenAI CLIP archive or state dict, an open_clip checkpoint, a safetensors file, "
    "or a Hugging Face CLIPModel directory (config.json + model.safetensors / pytorch_model.bin)"
)


class CheckpointError(FarreidError):
    """A checkpoint that is missing, unreadable, or not a CLIP ViT."""


@dataclass
class ClipCheckpoint:
    path: Path
    kind: str  # openai-torchscript | state-dict | open_clip | safetensors | hf-directory
    state: dict[str, Tensor]  # OpenAI names, stored dtype
    spec: ClipSpec


def read_checkpoint(path: str | Path, allow_torchscript: bool = False, activation: str = "auto") -> ClipCheckpoint:
    """Read `path` and infer its architecture. `activation` "auto" takes the HF config's, else QuickGELU
    (OpenAI's weights; LAION-trained open_clip weights need "gelu"). `path` may name a shipped checkpoint."""
    path = resolve_pretrained(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path} (expected {EXPECTED}, or a shipped name: "
                              f"{', '.join(SHIPPED)})")
    hf_config = None
    try:
        if path.is_dir():
            kind, state, hf_config = "hf-directory", *_read_hf_directory(path)
        elif is_torchscript_archive(path):
            kind = "openai-torchscript"
            if allow_torchscript:
                state = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            else:
                state = read_torchscript_tensors(path)
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            kind, state = "safetensors", load_file(str(path))
        else:
            kind, state = _read_torch_file(path)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError, SafetensorError) as exc:  # what readers raise on bytes they cannot parse
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in reason or "weights_only" in reason or "Unsupported global" in reason:
            reason = "it holds pickled Python objects besides tensors, which farreid does not unpickle"
        raise CheckpointError(f"cannot read {path}: {reason} (expected {EXPECTED})") from None
    # Causal masks some exporters store beside the weights are rebuilt by the towers, not loaded.
    state = {k: v for k, v in state.items() if k.rpartition(".")[2] != "attn_mask"}
    if is_hf_state_dict(state):
        state = hf_to_openai(state)
    if "visual.conv1.weight" not in state:
        raise CheckpointError(_not_a_clip_vit(path, state))
    if hf_config is not None:
        spec = spec_from_hf_config(hf_config, str(path))
        if activation != "auto":
            spec = replace(spec, activation=check_activation(activation))
    else:
        try:
            spec = infer_spec(state, name=str(path), activation="quick_gelu" if activation == "auto" else activation)
        except KeyError as exc:
            raise CheckpointError(f"{path}: incomplete CLIP weights, {exc.args[0]!r} is missing") from None
    return ClipCheckpoint(path, kind, state, spec)


def _read_torch_file(path: Path) -> tuple[str, dict[str, Tensor]]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    kind = "state-dict"
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        kind, obj = "open_clip", obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} is not a mapping of tensor names to tensors (expected {EXPECTED})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return kind, obj


def _read_hf_directory(path: Path) -> tuple[dict[str, Tensor], dict]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} is a directory without config.json (expected {EXPECTED})")
    config = json.loads(config_file.read_text())
    shards = sorted(path.glob("*.safetensors"))
    state: dict[str, Tensor] = {}
    if shards:
        from safetensors.torch import load_file

        for shard in shards:
            state.update(load_file(str(shard)))
    else:
        bins = sorted(path.glob("pytorch_model*.bin"))
        if not bins:
            raise CheckpointError(f"{path} has config.json but no *.safetensors or pytorch_model*.bin weights")
        for shard in bins:
            state.update(torch.load(shard, map_location="cpu", weights_only=True))
    return state, config


def _not_a_clip_vit(path: Path, state: dict[str, Tensor]) -> str:
    if any(k.startswith("visual.layer1.") for k in state):
        return f"{path} is a ResNet CLIP; farreid supports ViT image towers only"
    sample = ", ".join(sorted(state)[:4]) or "no tensors"
    return (
        f"{path} holds no CLIP ViT image tower: expected 'visual.conv1.weight' (OpenAI / open_clip names) or "
        f"'vision_model.embeddings.patch_embedding.weight' (Hugging Face names); found {sample}"
    )


def _count_blocks(state: dict[str, Tensor], prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def infer_spec(state: dict[str, Tensor], name: str, activation: str = "quick_gelu") -> ClipSpec:
    """Architecture from OpenAI-named tensor shapes; heads follow OpenAI's rule of 64 channels a head."""
    conv = state["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    positions = state["visual.positional_embedding"].shape[0] - 1
    grid = round(positions**0.5)
    if grid * grid != positions:
        raise CheckpointError(f"{name}: the positional embedding has {positions} patch rows, not a square grid")
    vision = VisionSpec(
        width=width,
        layers=_count_blocks(state, "visual.transformer.resblocks."),
        heads=max(1, width // 64),
        patch_size=patch,
        image_size=grid * patch,
        mlp_width=state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        output_dim=state["visual.proj"].shape[1] if "visual.proj" in state else width,
    )
    text = None
    if "token_embedding.weight" in state:
        text_width = state["ln_final.weight"].shape[0]
        text = TextSpec(
            width=text_width,
            layers=_count_blocks(state, "transformer.resblocks."),
            heads=max(1, text_width // 64),
            mlp_width=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
            output_dim=state["text_projection"].shape[1],
            context_length=state["positional_embedding"].shape[0],
            vocab_size=state["token_embedding.weight"].shape[0],
        )
    return ClipSpec(name, vision, text, activation=check_activation(activation))
