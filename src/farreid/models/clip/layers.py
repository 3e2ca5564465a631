"""The pre-LN transformer pieces shared by the CLIP and SigLIP towers, with OpenAI's parameter names.

Tokens are batch-first, (N, L, D). A block takes two optional hooks so that the ReID model can extend it
without a forked copy: `extra` tokens that join the attention as keys/values only (their outputs would be
dropped anyway, so no queries are computed for them), and a `side` module whose two branches run parallel
to attention and to the MLP and read the un-normalised residual stream.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from farreid.errors import FarreidError


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the activation OpenAI's CLIP weights were trained with."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return x * torch.sigmoid(1.702 * x)
        # inference: one new buffer instead of three (fresh large buffers cost page faults on CPU; ~40 % faster)
        return torch.sigmoid_(x * 1.702).mul_(x)


ACTIVATIONS = {  # the MLP activations of the supported families (SigLIP uses GELU's tanh approximation)
    "quick_gelu": QuickGELU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise FarreidError(f"unknown activation '{name}'; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class SideBranches(Protocol):
    """What a block calls on a per-block side object (e.g. a VSLA adapter pair bound to one batch's clip
    layout); both take and return (N, L, D)."""

    def attn_branch(self, x: Tensor) -> Tensor: ...

    def mlp_branch(self, x: Tensor) -> Tensor: ...


class SelfAttention(nn.Module):
    """Multi-head self-attention stored like `nn.MultiheadAttention` (fused in_proj), run by SDPA."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor, extra: Tensor | None = None, causal: bool = False, mask: Tensor | None = None) -> Tensor:
        """`mask`: bool, broadcastable to (N, heads, L, L + P), True where a query may attend to a key."""
        n, length, width = x.shape  # (N, L, D)
        head_dim = width // self.heads
        if extra is None:
            qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (N, L, 3D)
            q, k, v = qkv.view(n, length, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q = F.linear(x, self.in_proj_weight[:width], self.in_proj_bias[:width])
            q = q.view(n, length, self.heads, head_dim).transpose(1, 2)
            kv = F.linear(torch.cat([x, extra.to(x.dtype)], dim=1), self.in_proj_weight[width:], self.in_proj_bias[width:])
            k, v = kv.view(n, kv.shape[1], 2, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if q.device.type == "cpu" and q.dtype != torch.float32 and mask is None and not causal:
            out = _matmul_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (N, H, L, Dh)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, width))


def _matmul_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d)) v as two batched matmuls.

    On CPU in bf16, PyTorch's fused SDPA kernel is slower than this for ReID-length sequences (~130-200
    tokens): 17.7 vs 9.6 ms for ViT-B/16's 16 x 12 heads x 129 tokens, about 10 % of the whole tower.
    """
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))
    return torch.matmul(scores.softmax(dim=-1), v)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)) [+ side.attn(x)], then y + mlp(ln_2(y)) [+ side.mlp(y)]."""

    def __init__(self, width: int, heads: int, mlp_width: int, activation: str = "quick_gelu", eps: float = 1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, mlp_width),
                gelu=make_activation(activation),
                c_proj=nn.Linear(mlp_width, width),
            )
        )

    def forward(
        self,
        x: Tensor,
        extra: Tensor | None = None,
        side: SideBranches | None = None,
        causal: bool = False,
    ) -> Tensor:
        y = x + self.attn(self.ln_1(x), extra, causal)
        if side is not None:
            y = y + side.attn_branch(x)
        z = y + self.mlp(self.ln_2(y))
        if side is not None:
            z = z + side.mlp_branch(y)
        return z


class Transformer(nn.Module):
    """A stack of blocks that can hand back the outputs of any requested blocks."""

    def __init__(
        self, width: int, layers: int, heads: int, mlp_width: int, activation: str = "quick_gelu", eps: float = 1e-5
    ):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, mlp_width, activation, eps) for _ in range(layers)
        )
        self.grad_checkpointing = False

    def forward(
        self,
        x: Tensor,
        extra_tokens: Sequence[Tensor | None] | None = None,
        sides: Sequence[SideBranches | None] | None = None,
        causal: bool = False,
        keep: Sequence[int] = (),
        no_grad_blocks: int = 0,
    ) -> tuple[Tensor, dict[int, Tensor]]:
        """Returns the last block's output and {block index: output} for the indices in `keep`
        (negative indices count from the end; the returned keys are as requested).
        The first `no_grad_blocks` blocks run without autograd (nothing trainable lives in them)."""
        wanted = {i % self.layers: i for i in keep}
        kept: dict[int, Tensor] = {}
        for i, block in enumerate(self.resblocks):
            extra = extra_tokens[i] if extra_tokens is not None and i < len(extra_tokens) else None
            side = sides[i] if sides is not None and i < len(sides) else None
            if i < no_grad_blocks:
                with torch.no_grad():
                    x = block(x, extra, side, causal)
            elif self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, extra, side, causal, use_reentrant=False)
            else:
                x = block(x, extra, side, causal)
            if i in wanted:
                kept[wanted[i]] = x
        return x, kept


def init_transformer_(transformer: Transformer) -> None:
    """OpenAI's scheme: std shrinks with width and depth so that the residual stream stays O(1)."""
    width, layers = transformer.width, transformer.layers
    proj_std = width**-0.5 * (2 * layers) ** -0.5
    attn_std = width**-0.5
    fc_std = (2 * width) ** -0.5
    for block in transformer.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
        nn.init.zeros_(block.attn.in_proj_bias)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.zeros_(block.attn.out_proj.bias)
        nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
        nn.init.zeros_(block.mlp.c_fc.bias)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.zeros_(block.mlp.c_proj.bias)


def grid_size(image_size: int, patch: int, stride: int) -> int:
    """Tokens along one side for a conv patch embedding (remainder pixels dropped)."""
    if image_size < patch:
        raise ValueError(f"input side {image_size} is smaller than the patch size {patch}")
    return (image_size - patch) // stride + 1
