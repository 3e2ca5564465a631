"""Temporal pooling of per-frame features into one tracklet feature, ignoring padded frames."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from farreid.config.schema import POOLING_MODES
from farreid.errors import FarreidError


class TemporalPooling(nn.Module):
    """attention: softmax over T of Linear(d, 1) scores, weighted sum; mean: average of the real frames."""

    def __init__(self, dim: int, mode: str = "attention"):
        super().__init__()
        if mode not in POOLING_MODES:
            raise FarreidError(f"model.pooling must be one of {', '.join(POOLING_MODES)}; got {mode!r}")
        self.mode = mode
        self.score = nn.Linear(dim, 1) if mode == "attention" else None

    def forward(self, frames: Tensor, mask: Tensor | None = None) -> Tensor:
        """frames: (B, T, d); mask: (B, T) bool, True = real frame -> (B, d)."""
        if self.score is None:
            if mask is None:
                return frames.mean(dim=1)
            weights = mask.to(frames.dtype).unsqueeze(-1)
            return (frames * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return (frames * self.weights(frames, mask).unsqueeze(-1)).sum(dim=1)

    def weights(self, frames: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, T) frame weights summing to 1 (uniform over the real frames for mean pooling): what the pooling
        trusts, for inspection."""
        if self.score is None:
            real = torch.ones(frames.shape[:2], dtype=frames.dtype, device=frames.device) if mask is None else mask.to(frames.dtype)
            return real / real.sum(dim=1, keepdim=True).clamp_min(1.0)
        scores = self.score(frames).squeeze(-1)  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return scores.softmax(dim=1)
