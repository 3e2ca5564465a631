"""A colour-histogram tracklet embedding: the baseline a learned model must beat.

Clothing colour is the strongest cue a far-away person gives, so a fixed histogram is a fair, hard baseline
(on synthetic people, whose identity is their clothing, especially). Per frame: joint RGB histograms (4 levels a
channel) of three horizontal bands of the crop's central 40 % (head and top, bottoms, legs and shoes; the centre
keeps the person and drops most background), concatenated; frames averaged; square-rooted (the Hellinger map, so
that cosine similarity is the Bhattacharyya coefficient) and L2-normalised. Frames are the ones the model sees:
the same test sampling and input size. The layout was the best of the variants tried in docs/results.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from farreid.data import Tracklet
from farreid.data.decode import load_clip
from farreid.data.sampling import sample_clip
from farreid.eval import FeatureSet

LEVELS = 4  # per RGB channel
BANDS = ((0.10, 0.45), (0.45, 0.75), (0.75, 1.0))  # fractions of the crop height
COLUMNS = (0.3, 0.7)  # fractions of the crop width


def frame_histogram(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> one joint RGB histogram per band, each summing to 1, concatenated."""
    h, w = rgb.shape[:2]
    codes = rgb.astype(np.int64) * LEVELS // 256
    flat = (codes[..., 0] * LEVELS + codes[..., 1]) * LEVELS + codes[..., 2]
    flat = flat[:, int(w * COLUMNS[0]) : max(int(w * COLUMNS[1]), int(w * COLUMNS[0]) + 1)]
    parts = []
    for top, bottom in BANDS:
        band = flat[int(h * top) : max(int(h * bottom), int(h * top) + 1)]
        counts = np.bincount(band.ravel(), minlength=LEVELS**3).astype(np.float32)
        parts.append(counts / max(counts.sum(), 1.0))
    return np.concatenate(parts)


class ColourHistogram:
    """`feature_set(tracklets)` like `ReIDModel.feature_set`, with colour histograms as the embedding."""

    def __init__(self, size: tuple[int, int], num_frames: int = 8, sampling: str = "segment_begin",
                 interpolation: str = "bicubic"):
        self.size, self.num_frames, self.sampling, self.interpolation = tuple(size), num_frames, sampling, interpolation

    @property
    def dim(self) -> int:
        return len(BANDS) * LEVELS**3

    def embed_tracklet(self, tracklet: Tracklet, index: int = 0) -> np.ndarray:
        n = len(tracklet.frames)
        rng = np.random.default_rng([0, index])
        frames = sample_clip(self.sampling, n, self.num_frames, rng) if self.sampling != "all" else np.arange(n)
        clip = load_clip(tracklet.frames.paths(frames.tolist()), self.size, self.interpolation)  # (T, 3, H, W)
        hist = np.mean([frame_histogram(f.permute(1, 2, 0).numpy()) for f in clip], axis=0)
        root = np.sqrt(hist)
        return root / max(float(np.linalg.norm(root)), 1e-12)

    def feature_set(self, tracklets: Sequence[Tracklet]) -> FeatureSet:
        features = np.stack([self.embed_tracklet(t, i) for i, t in enumerate(tracklets)]) if tracklets else \
            np.zeros((0, self.dim), np.float32)
        return FeatureSet.from_tracklets(torch.from_numpy(features.astype(np.float32)), list(tracklets))
