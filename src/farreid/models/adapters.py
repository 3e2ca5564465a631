"""Video Set-Level Adapters (VSLA): two bottleneck branches beside every block of the image tower.

The temporal adapter (beside attention) projects each token down, lets the T frames of one tracklet attend
to each other separately at every token position, and projects back up; the frame adapter (beside the MLP)
is a down-QuickGELU-up bottleneck. Both read the un-normalised residual stream. Without a temporal position
code the adapters treat a tracklet as a set: permuting frames permutes their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from farreid.models.clip.layers import QuickGELU, SelfAttention


class TemporalAdapter(nn.Module):
    def __init__(self, width: int, bottleneck: int = 256, zero_init: bool = False):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.attn = SelfAttention(bottleneck, bottleneck // 64 if bottleneck % 64 == 0 else 1)  # 64 channels a head
        self.up = nn.Linear(bottleneck, width)
        if zero_init:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor, num_frames: int, frame_mask: Tensor | None = None) -> Tensor:
        """x: (B*T, L, D), frames of a clip consecutive; frame_mask: (B, T) bool, False = padding (never a key)."""
        bt, length, _ = x.shape
        b, t = bt // num_frames, num_frames
        h = self.down(x)  # (B*T, L, r)
        h = h.view(b, t, length, -1).transpose(1, 2).reshape(b * length, t, -1)  # (B*L, T, r)
        mask = None
        if frame_mask is not None:
            mask = frame_mask.repeat_interleave(length, dim=0).view(b * length, 1, 1, t)
        h = self.attn(h, mask=mask)
        h = h.view(b, length, t, -1).transpose(1, 2).reshape(bt, length, -1)  # (B*T, L, r)
        return self.up(h)


class FrameAdapter(nn.Module):
    def __init__(self, width: int, bottleneck: int = 256, zero_init: bool = False):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.act = QuickGELU()
        self.up = nn.Linear(bottleneck, width)
        if zero_init:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.act(self.down(x)))


class VSLAdapter(nn.Module):
    """The adapter pair of one block."""

    def __init__(self, width: int, bottleneck: int = 256, zero_init: bool = False):
        super().__init__()
        self.temporal = TemporalAdapter(width, bottleneck, zero_init)
        self.frame = FrameAdapter(width, bottleneck, zero_init)

    def bind(self, num_frames: int, frame_mask: Tensor | None = None) -> "BoundAdapter":
        """The block-side object for one batch: this adapter plus the batch's clip layout."""
        return BoundAdapter(self, num_frames, frame_mask)


@dataclass
class BoundAdapter:
    """Implements the tower's side-branch protocol for one forward pass."""

    adapter: VSLAdapter
    num_frames: int
    frame_mask: Tensor | None

    def attn_branch(self, x: Tensor) -> Tensor:
        return self.adapter.temporal(x, self.num_frames, self.frame_mask)

    def mlp_branch(self, x: Tensor) -> Tensor:
        return self.adapter.frame(x)

