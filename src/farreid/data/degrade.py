"""Far-distance degradation in plain torch: what a ground crop looks like when the person is a few dozen pixels tall.

Down-scale to a person height in pixels (antialiased), Gaussian blur, JPEG-style block compression (8x8 DCT of
YCbCr with the standard quantisation tables scaled to a quality), sensor noise, then up-scale back. Every
parameter is given by the caller, so one draw serves all frames of a clip.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The example quantisation tables of the JPEG standard (ITU-T T.81, Annex K), luminance and chrominance.
_LUMA_Q = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA_Q = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _dct_matrix(n: int = 8) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


_DCT = _dct_matrix()


def quant_tables(quality: float) -> torch.Tensor:
    """(3, 8, 8) quantisation steps (in 0..255 units) for Y, Cb, Cr at a JPEG quality in [1, 100]."""
    quality = min(max(quality, 1.0), 100.0)
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    tables = []
    for base in (_LUMA_Q, _CHROMA_Q, _CHROMA_Q):
        q = torch.floor((torch.tensor(base, dtype=torch.float32) * scale + 50.0) / 100.0).clamp(1, 255)
        tables.append(q.view(8, 8))
    return torch.stack(tables)


def jpeg_like(clip: torch.Tensor, quality: float) -> torch.Tensor:
    """8x8 block-DCT quantisation of (T, 3, H, W) float [0, 1] frames in YCbCr, like a JPEG round trip."""
    t, c, h, w = clip.shape
    ph, pw = (-h) % 8, (-w) % 8
    x = F.pad(clip, (0, pw, 0, ph), mode="replicate") if ph or pw else clip
    ycc = torch.einsum("ij,tjhw->tihw", _RGB_TO_YCBCR, x) * 255.0
    ycc[:, 0] -= 128.0
    hh, ww = x.shape[-2] // 8, x.shape[-1] // 8
    blocks = ycc.view(t, 3, hh, 8, ww, 8).permute(0, 1, 2, 4, 3, 5)  # (T, 3, hh, ww, 8, 8)
    coeffs = _DCT @ blocks @ _DCT.T
    q = quant_tables(quality).view(1, 3, 1, 1, 8, 8)
    blocks = _DCT.T @ (torch.round(coeffs / q) * q) @ _DCT
    ycc = blocks.permute(0, 1, 2, 4, 3, 5).reshape(t, 3, hh * 8, ww * 8)
    ycc[:, 0] += 128.0
    rgb = torch.einsum("ij,tjhw->tihw", torch.linalg.inv(_RGB_TO_YCBCR), ycc / 255.0)
    return rgb[..., :h, :w].clamp(0.0, 1.0)


def gaussian_blur(clip: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (T, C, H, W); sigma in pixels (0 = unchanged)."""
    if sigma <= 0:
        return clip
    radius = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=clip.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = clip.shape[1]
    pad_h = min(radius, clip.shape[-1] - 1)
    pad_v = min(radius, clip.shape[-2] - 1)
    k = kernel[radius - pad_h : radius + pad_h + 1]
    out = F.conv2d(F.pad(clip, (pad_h, pad_h, 0, 0), mode="reflect") if pad_h else clip,
                   k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    k = kernel[radius - pad_v : radius + pad_v + 1]
    return F.conv2d(F.pad(out, (0, 0, pad_v, pad_v), mode="reflect") if pad_v else out,
                    k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def degrade(
    clip: torch.Tensor,
    target_height: int,
    blur_sigma: float,
    quality: float,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """(T, 3, H, W) float [0, 1] -> the same size, as if seen `target_height` pixels tall.

    `noise`, if given, is added at the low resolution and must have shape (T, 3, h, w) of the small frames
    (see `small_size`); the caller draws it so that all randomness stays under its generator.
    """
    _, _, h, w = clip.shape
    if target_height >= h:
        return clip
    size = small_size(h, w, target_height)
    small = F.interpolate(clip, size=size, mode="bilinear", antialias=True, align_corners=False)
    small = gaussian_blur(small, blur_sigma)
    small = jpeg_like(small, quality)
    if noise is not None:
        small = (small + noise).clamp(0.0, 1.0)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def small_size(h: int, w: int, target_height: int) -> tuple[int, int]:
    return max(1, target_height), max(1, round(w * target_height / h))
