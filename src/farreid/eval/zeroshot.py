"""Zero-shot attribute retrieval: is a pair of towers a vision-language model, or two unrelated encoders?

For each value of an attribute (top colour, bottoms, backpack) the text "a person in a red top" ranks held-out
images by cosine similarity; average precision against the images that truly have that value, averaged over the
values, is compared with chance (the AP of a random ranking is the share of positives). Top-colour
classification (the most similar of all colour texts) is reported beside it, with its chance rate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.data.synthetic.captions import attribute_query
from farreid.data.transforms import normalize, to_float

ATTRIBUTES = ("top", "bottom", "bag")


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP of ranking by descending `scores` against boolean `positive`."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    if not hits.any():
        return float("nan")
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


@torch.no_grad()
def encode_images(clip: nn.Module, images: Tensor, device: torch.device, batch_size: int = 256) -> Tensor:
    """uint8 (N, 3, H, W) -> L2-normalised projected image features (N, d), float32 on the CPU."""
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(to_float(images[start : start + batch_size])).to(device)
        out.append(F.normalize(clip.encode_image(x).float(), dim=-1).cpu())
    return torch.cat(out)


@torch.no_grad()
def encode_texts(clip: nn.Module, tokenizer, texts: Sequence[str], device: torch.device) -> Tensor:
    tokens = tokenizer(list(texts), context_length=clip.text.context_length).to(device)
    return F.normalize(clip.encode_text(tokens).float(), dim=-1).cpu()


def zero_shot_attributes(clip: nn.Module, tokenizer, images: Tensor, attributes: Sequence[dict],
                         device: torch.device | str = "cpu") -> dict[str, float]:
    """mAP and chance per attribute, top-colour accuracy and chance, and the top-colour mAP per platform."""
    device = torch.device(device)
    was_training = clip.training
    clip.eval()
    try:
        image_features = encode_images(clip, images, device)
        results: dict[str, float] = {}
        platforms = np.array([a["platform"] for a in attributes])
        for name in ATTRIBUTES:
            truth = np.array([a[name] for a in attributes])
            values = sorted(set(truth))
            text_features = encode_texts(clip, tokenizer, [attribute_query(name, v) for v in values], device)
            scores = (image_features @ text_features.T).numpy()  # (N, values)
            aps = [average_precision(scores[:, j], truth == v) for j, v in enumerate(values)]
            results[f"{name}_mAP"] = float(np.mean(aps))
            results[f"{name}_chance_mAP"] = float(np.mean([(truth == v).mean() for v in values]))
            if name == "top":
                predicted = np.array(values)[scores.argmax(axis=1)]
                results["top_accuracy"] = float((predicted == truth).mean())
                results["top_chance_accuracy"] = float(max((truth == v).mean() for v in values))
                for platform in ("ground", "aerial"):
                    rows = platforms == platform
                    if rows.any():
                        aps = [average_precision(scores[rows, j], truth[rows] == v) for j, v in enumerate(values)
                               if (truth[rows] == v).any()]
                        results[f"top_mAP_{platform}"] = float(np.mean(aps))
        return results
    finally:
        clip.train(was_training)
