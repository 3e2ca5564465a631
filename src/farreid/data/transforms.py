"""Clip-consistent image transforms on (T, C, H, W) tensors with plain torch ops (no torchvision).

Every random parameter is drawn once per clip from the `torch.Generator` passed in, and the same parameters are
applied to all T frames: a tracklet stays one person under one flip, crop, colour change, erasing box and
degradation. (Only the degradation's sensor-noise field is drawn per frame, at one strength, as a camera's is.)
Order: far-distance degradation (per platform) -> flip -> pad + crop -> colour jitter -> normalise -> erase.
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F

from farreid.config.schema import AugConfig
from farreid.data.degrade import degrade, small_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def to_float(clip: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is taken as already in [0, 1]."""
    return clip.float().div_(255.0) if clip.dtype == torch.uint8 else clip.float()


def normalize(clip: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=clip.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=clip.dtype).view(1, 3, 1, 1)
    return (clip - mean) / std


def resize_clip(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, C, H, W) -> (T, C, *size), bilinear with antialiasing when shrinking; float output."""
    clip = to_float(clip)
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", antialias=True, align_corners=False)


def pad_crop(clip: torch.Tensor, pad: int, top: int, left: int) -> torch.Tensor:
    """Zero-pad by `pad` on every side, then crop the original size at (top, left) of the padded frame."""
    h, w = clip.shape[-2:]
    padded = F.pad(clip, (pad, pad, pad, pad))
    return padded[..., top : top + h, left : left + w]


def _gray(clip: torch.Tensor) -> torch.Tensor:
    return (clip * _GRAY).sum(1, keepdim=True)


def adjust_brightness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return (clip * factor).clamp(0.0, 1.0)


def adjust_contrast(clip: torch.Tensor, factor: float) -> torch.Tensor:
    mean = _gray(clip).mean(dim=(-3, -2, -1), keepdim=True)  # per frame
    return (mean + (clip - mean) * factor).clamp(0.0, 1.0)


def adjust_saturation(clip: torch.Tensor, factor: float) -> torch.Tensor:
    gray = _gray(clip)
    return (gray + (clip - gray) * factor).clamp(0.0, 1.0)


def adjust_hue(clip: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate hue by `shift` turns (in [-0.5, 0.5]) as a rotation of the chroma plane in YIQ space."""
    angle = 2 * math.pi * shift
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    matrix = _YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ
    return torch.einsum("ij,tjhw->tihw", matrix.to(clip.dtype), clip).clamp(0.0, 1.0)


def erase(clip: torch.Tensor, top: int, left: int, height: int, width: int, value: float = 0.0) -> torch.Tensor:
    out = clip.clone()
    out[..., top : top + height, left : left + width] = value
    return out


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _chance(g: torch.Generator, p: float) -> bool:
    return p > 0 and float(torch.rand((), generator=g)) < p


class ClipAugment:
    """Training augmentation; `__call__(clip, platform, generator)` -> normalised float (T, 3, H, W).

    `aug` is the `data.aug` section of the config (default: its defaults); build one in Python with
    `ClipAugment(AugConfig(degrade_prob=0.0))`.
    """

    def __init__(self, aug: AugConfig | None = None):
        self.aug = aug if aug is not None else AugConfig()

    def __call__(self, clip: torch.Tensor, platform: str, generator: torch.Generator) -> torch.Tensor:
        g, a = generator, self.aug
        x = to_float(clip)
        _, _, h, w = x.shape
        if platform in a.degrade_platforms and _chance(g, a.degrade_prob):
            x = self._degrade(x, g)
        if _chance(g, a.flip_prob):
            x = x.flip(-1)
        if a.pad > 0:
            top, left = (int(v) for v in torch.randint(0, 2 * a.pad + 1, (2,), generator=g))
            x = pad_crop(x, a.pad, top, left)
        if _chance(g, a.jitter_prob):
            x = self._jitter(x, g)
        x = normalize(x)
        if _chance(g, a.erase_prob):
            box = self._erase_box(h, w, g)
            if box is not None:
                x = erase(x, *box)
        return x

    def _degrade(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        a = self.aug
        _, _, h, w = x.shape
        target = int(torch.randint(a.degrade_min_height, a.degrade_max_height + 1, (), generator=g))
        if target >= h:
            return x
        sigma = _uniform(g, 0.0, a.degrade_max_blur)
        quality = _uniform(g, a.degrade_min_quality, 95.0)
        sh, sw = small_size(h, w, target)
        noise = torch.randn((x.shape[0], 3, sh, sw), generator=g) * _uniform(g, 0.0, a.degrade_noise)
        return degrade(x, target, sigma, quality, noise)

    def _jitter(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        a, ops = self.aug, []
        if a.brightness > 0:
            ops.append((adjust_brightness, _uniform(g, 1 - a.brightness, 1 + a.brightness)))
        if a.contrast > 0:
            ops.append((adjust_contrast, _uniform(g, 1 - a.contrast, 1 + a.contrast)))
        if a.saturation > 0:
            ops.append((adjust_saturation, _uniform(g, 1 - a.saturation, 1 + a.saturation)))
        if a.hue > 0:
            ops.append((adjust_hue, _uniform(g, -a.hue, a.hue)))
        for i in torch.randperm(len(ops), generator=g).tolist():
            op, value = ops[i]
            x = op(x, value)
        return x

    def _erase_box(self, h: int, w: int, g: torch.Generator) -> tuple[int, int, int, int] | None:
        """A box of random area and aspect ratio that fits the frame (up to 100 tries, as is customary)."""
        a = self.aug
        for _ in range(100):
            area = _uniform(g, a.erase_min_area, a.erase_max_area) * h * w
            aspect = math.exp(_uniform(g, math.log(a.erase_ratio), -math.log(a.erase_ratio)))
            eh, ew = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < eh < h and 0 < ew < w:
                top = int(torch.randint(0, h - eh + 1, (), generator=g))
                left = int(torch.randint(0, w - ew + 1, (), generator=g))
                return top, left, eh, ew
        return None


class ClipEval:
    """Test-time transform: float conversion and ImageNet normalisation (frames arrive resized)."""

    def __call__(self, clip: torch.Tensor, platform: str, generator: torch.Generator | None = None) -> torch.Tensor:
        return normalize(to_float(clip))
