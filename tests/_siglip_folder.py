"""A tiny Hugging Face `SiglipModel` folder with random weights and a SentencePiece model trained on captions."""

from __future__ import annotations

import io
import random
from pathlib import Path

import torch

COLOURS = ["red", "blue", "green", "black", "white", "grey", "yellow"]
ITEMS = ["shirt", "coat", "trousers", "shorts", "skirt", "backpack", "hat", "shoes"]


def captions(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"A person in a {rng.choice(COLOURS)} {rng.choice(ITEMS)} and {rng.choice(COLOURS)} {rng.choice(ITEMS)}, walking."
        for _ in range(n)
    ]


def train_spiece(path: Path) -> Path:
    """A 40-piece unigram model with SigLIP's special pieces (</s> doubles as padding)."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(captions()), model_writer=buffer, vocab_size=40, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        minloglevel=2, num_threads=1,
    )
    path.write_bytes(buffer.getvalue())
    return path


def siglip_folder(folder: Path, seed: int = 3, text: bool = True):
    """Write config.json, model.safetensors and spiece.model; return the transformers model."""
    import transformers

    torch.manual_seed(seed)
    text_config = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                       vocab_size=40, max_position_embeddings=16, pad_token_id=1, eos_token_id=1, bos_token_id=None)
    vision_config = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2,
                         image_size=32, patch_size=8)
    config = transformers.SiglipConfig(text_config=text_config, vision_config=vision_config)
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():  # transformers initialises some of these to constants; random values test more
        for name, p in model.named_parameters():
            if "layernorm" in name or "layer_norm" in name or name.startswith("logit"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(folder, safe_serialization=True)
    train_spiece(folder / "spiece.model")
    return model
