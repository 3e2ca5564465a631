"""The SigLIP image tower at any input size: patch embedding (with bias) + learned grid positions -> pre-LN
blocks (the shared `Transformer`, so adapters and prompts hook in as in CLIP) -> post-LN -> attention-pool head.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.models.clip.layers import Transformer, init_transformer_, make_activation
from farreid.models.clip.vision import TokenTower, resize_grid
from farreid.models.siglip.configs import ACTIVATION, LAYER_NORM_EPS, SiglipVisionSpec


class AttentionPoolHead(nn.Module):
    """One learned probe attends over the tokens (fused q/k/v like `nn.MultiheadAttention`), then a
    residual MLP on its normalised output: SigLIP's image embedding (N, width)."""

    def __init__(self, width: int, heads: int, mlp_width: int):
        super().__init__()
        self.heads = heads
        self.probe = nn.Parameter(torch.randn(1, 1, width))
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.ln = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, mlp_width), gelu=make_activation(ACTIVATION), c_proj=nn.Linear(mlp_width, width))
        )
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, tokens: Tensor) -> Tensor:
        n, length, width = tokens.shape
        head_dim = width // self.heads
        weight, bias = self.in_proj_weight.to(tokens.dtype), self.in_proj_bias.to(tokens.dtype)
        q = F.linear(self.probe.to(tokens.dtype), weight[:width], bias[:width]).expand(n, -1, -1)
        kv = F.linear(tokens, weight[width:], bias[width:])
        q = q.view(n, 1, self.heads, head_dim).transpose(1, 2)
        k, v = kv.view(n, length, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        pooled = self.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, 1, width))
        return (pooled + self.mlp(self.ln(pooled)))[:, 0]


class SiglipVisionTower(TokenTower):
    """`image_size` (H, W) is the size the tower is built for; other sizes work (positions resized on the fly)."""

    def __init__(
        self,
        spec: SiglipVisionSpec,
        image_size: tuple[int, int] | None = None,
        stride: int | None = None,
        pos_resize: str = "bicubic",
        autocast: str | None = None,
    ):
        image_size = image_size or (spec.image_size, spec.image_size)
        super().__init__(spec.patch_size, image_size, stride, spec.output_dim, pos_resize, autocast)
        width = spec.width
        self.patch_embedding = nn.Conv2d(3, width, kernel_size=spec.patch_size, stride=self.stride)
        self.positional_embedding = nn.Parameter(width**-0.5 * torch.randn(self.grid[0] * self.grid[1], width))
        self.transformer = Transformer(width, spec.layers, spec.heads, spec.mlp_width, ACTIVATION, LAYER_NORM_EPS)
        self.ln_post = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.head = AttentionPoolHead(width, spec.heads, spec.mlp_width)
        init_transformer_(self.transformer)

    def embed(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) -> patches + positions (N, h*w, width); no CLS token, no pre-norm."""
        x = self.patch_embedding(images)
        grid = (x.shape[2], x.shape[3])
        pos = resize_grid(self.positional_embedding, self.grid, grid, self.pos_resize)
        return x.flatten(2).transpose(1, 2) + pos.to(x.dtype)

    def readout(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The post-LN tokens, and the attention-pool head's output as the projected feature."""
        tokens = self.ln_post(x)
        return tokens, self.head(tokens)

    def summary(self, tokens: Tensor) -> Tensor:
        """Without a CLS token, a block's summary is the mean of its patch tokens (global average pooling,
        the readout ViTs without a class token use): penultimate = mean of the second-to-last block's raw
        tokens, final = mean of the post-LN tokens; projected stays the attention-pool head. The paper's CLS of
        the penultimate and last blocks is a per-block summary over every patch; the head is not one (it was
        trained on post-LN last-block tokens only), so the parameter-free mean is the analogue that exists at
        every depth, and the head keeps its role as the image embedding of the joint space."""
        return tokens.mean(dim=1)
