"""The CLIP image tower at any input size, with OpenAI's parameter names (`visual.*` without the prefix)."""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.models.backbone import TowerFeatures
from farreid.models.clip.configs import VisionSpec
from farreid.models.clip.layers import SideBranches, Transformer, grid_size, init_transformer_

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resize_pos_embed(pos: Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize a (1 + h*w, D) positional embedding from one patch grid to another, CLS row kept.

    Interpolation runs in fp32 (CPU bicubic has no fp16 kernel, and fp16 rounding would blur the grid);
    the result has the input's dtype. Identity when the grids agree.
    """
    if tuple(src_grid) == tuple(dst_grid):
        return pos
    (sh, sw), (dh, dw) = src_grid, dst_grid
    if pos.shape[0] != 1 + sh * sw:
        raise ValueError(f"positional embedding has {pos.shape[0]} rows, expected 1 + {sh}x{sw}")
    return torch.cat([pos[:1], resize_grid(pos[1:], src_grid, dst_grid, mode)])


def resize_grid(rows: Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize (h*w, D) row-major grid positions to another grid, in fp32, returned in the input's dtype."""
    if tuple(src_grid) == tuple(dst_grid):
        return rows
    (sh, sw), (dh, dw) = src_grid, dst_grid
    grid = rows.float().reshape(1, sh, sw, -1).permute(0, 3, 1, 2)  # (1, D, sh, sw)
    grid = F.interpolate(grid, size=(dh, dw), mode=mode, align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(dh * dw, -1).to(rows.dtype)


@dataclass
class VisionOutput:
    """Per-token outputs of one forward pass; N = images, L = 1 + patches (CLS first)."""

    blocks: dict[int, Tensor]  # requested blocks' raw residual outputs (N, L, width), keyed as requested
    tokens: Tensor  # ln_post of the last block's output (N, L, width)
    projected: Tensor  # ln_post(CLS) @ proj (N, output_dim)

    @property
    def pooled(self) -> Tensor:
        """The final CLS after ln_post (N, width)."""
        return self.tokens[:, 0]


class TokenTower(nn.Module, abc.ABC):
    """What the image towers built on `layers.Transformer` share (CLIP's and SigLIP's): the patch grid of the
    input size they are built for, the block list, gradient checkpointing, and the forward pass with its hooks.
    A tower adds `embed` (images -> tokens before the blocks) and `readout` (the last block's tokens -> the
    normalised tokens and the projected feature)."""

    transformer: Transformer

    def __init__(self, patch_size: int, image_size: tuple[int, int], stride: int | None, output_dim: int,
                 pos_resize: str, autocast: str | None):
        super().__init__()
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be None, 'bf16' or 'fp16'; got {autocast!r}")
        self.patch_size, self.stride = patch_size, stride or patch_size
        self.image_size = tuple(image_size)
        self.grid = tuple(grid_size(side, patch_size, self.stride) for side in self.image_size)
        self.output_dim, self.pos_resize, self.autocast = output_dim, pos_resize, autocast

    @property
    def width(self) -> int:
        return self.transformer.width

    @property
    def layers(self) -> int:
        return self.transformer.layers

    @property
    def blocks(self) -> nn.ModuleList:
        return self.transformer.resblocks

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.transformer.grad_checkpointing = enabled

    @abc.abstractmethod
    def embed(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) -> the tokens the first block takes (N, L, width)."""

    @abc.abstractmethod
    def readout(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The last block's output -> (normalised tokens (N, L, width), projected feature (N, output_dim))."""

    @abc.abstractmethod
    def summary(self, tokens: Tensor) -> Tensor:
        """(N, L, width) tokens of one block -> the per-image feature (N, width) the paper reads there."""

    def frame_features(
        self,
        images: Tensor,
        extra_tokens: Sequence[Tensor | None] | None = None,
        sides: Sequence[SideBranches | None] | None = None,
        no_grad_prefix: int = -1,
    ) -> TowerFeatures:
        """The paper's three features: the summary of the second-to-last block (raw residual stream), the
        summary after the final norm, and the projected feature."""
        out = self(images, extra_tokens, sides, return_blocks=(-2,), no_grad_prefix=no_grad_prefix)
        return TowerFeatures(self.summary(out.blocks[-2]), self.summary(out.tokens), out.projected)

    def forward(
        self,
        images: Tensor,
        extra_tokens: Sequence[Tensor | None] | None = None,
        sides: Sequence[SideBranches | None] | None = None,
        return_blocks: Sequence[int] = (),
        no_grad_prefix: int = -1,
    ) -> VisionOutput:
        """`extra_tokens[i]` (N, P, width) join block i's attention as keys/values; `sides[i]` adds parallel
        branches to block i. `no_grad_prefix` = k >= 0 runs the embedding and the first k blocks without
        autograd (for a caller whose trainable parts start at block k); -1 keeps autograd everywhere."""
        ctx = (
            torch.autocast(images.device.type, dtype=AUTOCAST_DTYPES[self.autocast])
            if self.autocast
            else contextlib.nullcontext()
        )
        with ctx:
            with torch.no_grad() if no_grad_prefix >= 0 else contextlib.nullcontext():
                x = self.embed(images)
            x, kept = self.transformer(
                x, extra_tokens, sides, keep=return_blocks, no_grad_blocks=max(no_grad_prefix, 0)
            )
            tokens, projected = self.readout(x)
        return VisionOutput(blocks=kept, tokens=tokens, projected=projected)


class VisionTower(TokenTower):
    """Patch embedding + CLS + positional embedding + ln_pre -> blocks -> ln_post -> proj.

    `image_size` is the (H, W) the tower is built for; inputs of another size still work (the positional
    embedding is resized on the fly). `stride` < patch gives overlapping patches.
    """

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        patch_size: int,
        output_dim: int,
        image_size: tuple[int, int] = (224, 224),
        mlp_width: int | None = None,
        stride: int | None = None,
        activation: str = "quick_gelu",
        pos_resize: str = "bicubic",
        autocast: str | None = None,
    ):
        super().__init__(patch_size, image_size, stride, output_dim, pos_resize, autocast)
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=self.stride, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(1 + self.grid[0] * self.grid[1], width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_width or 4 * width, activation)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        init_transformer_(self.transformer)

    @classmethod
    def from_spec(cls, spec: VisionSpec, image_size: tuple[int, int] | None = None, **kwargs) -> "VisionTower":
        return cls(
            spec.width, spec.layers, spec.heads, spec.patch_size, spec.output_dim,
            image_size=image_size or (spec.image_size, spec.image_size), mlp_width=spec.mlp_width, **kwargs,
        )

    def embed(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) -> ln_pre(CLS + patches + positions) (N, 1 + h*w, width)."""
        x = self.conv1(images)  # (N, D, h, w)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)  # (N, h*w, D)
        cls_token = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        pos = self.positional_embedding
        if grid != self.grid:
            pos = resize_pos_embed(pos, self.grid, grid, self.pos_resize)
        x = torch.cat([cls_token, x], dim=1) + pos.to(x.dtype)
        return self.ln_pre(x)

    def readout(self, x: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.ln_post(x)
        return tokens, tokens[:, 0] @ self.proj.to(tokens.dtype)

    def summary(self, tokens: Tensor) -> Tensor:
        """The CLS token: the paper's per-block feature."""
        return tokens[:, 0]
