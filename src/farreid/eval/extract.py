"""Embed every tracklet a loader yields, with horizontal-flip test-time augmentation: the one embedding path of
test extraction (`ReIDModel`, `farreid eval`) and of validation during training (`farreid.engine.validate`).

Works with any `embed_fn(batch) -> (B, D)` over the batch dicts of `farreid.data` (clip, mask, index, ...), so it
serves a trained `FarReID` (`lambda b: model.embed(b["clip"], model.prompt_keys(b), b["mask"])`), an exported
model, or a toy function in tests. Several batch rows may carry the same `index`: that is how the dense
(all-frames) loader splits a long tracklet into chunks of T frames. Their embeddings are averaged, weighted by
each chunk's number of real frames (`mask`), so every frame counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

from farreid.errors import FarreidError
from farreid.utils.device import Precision
from farreid.utils.log import progress

EmbedFn = Callable[[dict[str, Any]], torch.Tensor]


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _embed(embed_fn: EmbedFn, batch: dict[str, Any], flip: bool, normalize: bool) -> torch.Tensor:
    out = embed_fn(batch).float()
    if flip:
        out = (out + embed_fn({**batch, "clip": batch["clip"].flip(-1)}).float()) / 2
    return F.normalize(out, dim=1) if normalize else out


@dataclass
class EmbeddingSums:
    """Per tracklet, the frame-weighted sum of its clips' embeddings, its frame count and the label fields asked
    for. Sums add up: the shares of several processes give the same features as one pass over everything."""

    sums: torch.Tensor | None  # (N, D) float64; None until a clip was embedded
    weights: torch.Tensor  # (N,) float64, real frames seen per tracklet
    labels: dict[str, torch.Tensor] = field(default_factory=dict)  # field -> (N,) int64, per tracklet

    def __add__(self, other: "EmbeddingSums") -> "EmbeddingSums":
        if self.sums is None or other.sums is None:
            sums = self.sums if other.sums is None else other.sums
        else:
            sums = self.sums + other.sums
        seen = other.weights > 0
        labels = {k: torch.where(seen, other.labels[k], v) for k, v in self.labels.items()}
        return EmbeddingSums(sums, self.weights + other.weights, labels)

    def features(self, normalize: bool = True) -> torch.Tensor:
        """(N, D) float32: the frame-weighted mean of each tracklet's clip embeddings (L2-normalised)."""
        num_items = len(self.weights)
        missing = int((self.weights == 0).sum())
        if self.sums is None or missing:
            raise FarreidError(f"extract_features: {missing or num_items} of {num_items} tracklets got no embedding")
        out = (self.sums / self.weights[:, None]).float()
        return F.normalize(out, dim=1) if normalize else out


def embedding_sums(
    embed_fn: EmbedFn,
    loader: Iterable[dict[str, Any]],
    num_items: int,
    precision: Precision | None = None,
    flip: bool = True,
    normalize: bool = True,
    labels: Sequence[str] = (),
) -> EmbeddingSums:
    """The sums behind `extract_features` over the batches `loader` yields (all of a data set, or one process's
    share of it), with the batch fields named in `labels` recorded per tracklet."""
    precision = precision or Precision(torch.device("cpu"))
    sums: torch.Tensor | None = None
    weights = torch.zeros(num_items, dtype=torch.float64)
    recorded = {k: torch.full((num_items,), -1, dtype=torch.int64) for k in labels}
    clips = len(loader.dataset) if hasattr(loader, "dataset") else None  # dense sampling: several clips a tracklet
    with torch.inference_mode(), progress(desc="extracting features", total=clips, unit="clip") as bar:
        for batch in loader:
            for key in ("clip", "index", *labels):
                if key not in batch:
                    raise FarreidError(f"extract_features: batch has no {key!r} entry (keys: {sorted(batch)})")
            index = batch["index"].long().cpu()
            if len(index) and (int(index.min()) < 0 or int(index.max()) >= num_items):
                raise FarreidError(f"extract_features: batch index outside 0..{num_items - 1}")
            with precision.autocast():
                emb = _embed(embed_fn, _to_device(batch, precision.device), flip, normalize).cpu()
            if emb.ndim != 2 or emb.shape[0] != len(index):
                raise FarreidError(f"embed_fn returned shape {tuple(emb.shape)} for a batch of {len(index)} clips")
            if not torch.isfinite(emb).all():
                raise FarreidError("embed_fn returned NaN or infinite values")
            mask = batch.get("mask")
            if mask is not None:
                frames = mask.sum(1).double().cpu()
            else:
                frames = torch.full((len(index),), float(batch["clip"].shape[1]), dtype=torch.float64)
            if sums is None:
                sums = torch.zeros(num_items, emb.shape[1], dtype=torch.float64)
            sums.index_add_(0, index, emb.double() * frames[:, None])
            weights.index_add_(0, index, frames)
            for key, column in recorded.items():
                column[index] = torch.as_tensor(batch[key]).long().cpu()
            bar.update(len(index))
    return EmbeddingSums(sums, weights, recorded)


def extract_features(
    embed_fn: EmbedFn,
    loader: Iterable[dict[str, Any]],
    precision: Precision | None = None,
    flip: bool = True,
    normalize: bool = True,
    num_items: int | None = None,
) -> torch.Tensor:
    """(N, D) float32 CPU embeddings, row i = the tracklet with `index` i.

    flip: average with the embedding of the horizontally flipped clip. normalize: L2-normalise the flip
    average and the final (chunk-averaged) embedding. num_items: N, by default `len(loader.dataset)`.
    """
    if num_items is None:
        dataset = getattr(loader, "dataset", None)
        if dataset is None:
            raise FarreidError("extract_features needs num_items when the loader has no .dataset")
        num_items = len(dataset)
    return embedding_sums(embed_fn, loader, num_items, precision, flip, normalize).features(normalize)
