"""Frame decoding: file -> RGB uint8 at the model's input size.

PIL with JPEG draft mode: for a JPEG much larger than the target, libjpeg decodes at 1/2, 1/4 or 1/8 scale
directly in the DCT domain (never below the target size), then one resize finishes the job. Frames repeated in a
clip (short tracklets) are decoded once. Measured against plain PIL in `benchmarks/bench_data.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from farreid.errors import FarreidError

RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB by bit depth: 16-bit grey levels are scaled down (PIL's own convert would clip them to white);
    float or 32-bit images are refused rather than guessed at."""
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        levels = np.asarray(image, dtype=np.uint32)
        if levels.max(initial=0) > 0xFFFF:
            raise ValueError(f"{image.mode} image with values above 16 bits")
        image = Image.fromarray((levels >> 8).astype(np.uint8), "L")
    elif image.mode in ("I", "F"):
        raise ValueError(f"{image.mode} ({'32-bit integer' if image.mode == 'I' else 'floating-point'}) images have "
                         "no defined 8-bit colour; convert the frame to 8-bit RGB")
    return image.convert("RGB")


def decode_frame(path: str, size: tuple[int, int], interpolation: str = "bicubic", draft: bool = True) -> np.ndarray:
    """One frame as (H, W, 3) uint8 resized to `size` = (H, W); an unreadable file (or one whose header claims
    more pixels than PIL's decompression-bomb limit) raises naming its path."""
    height, width = size
    try:
        with Image.open(path) as image:
            if draft and image.format == "JPEG":
                image.draft("RGB", (width, height))
            image = to_rgb(image)
            if image.size != (width, height):
                image = image.resize((width, height), RESAMPLE[interpolation])
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FarreidError(f"unreadable image {path}: {exc}") from None


def load_clip(paths: Sequence[str], size: tuple[int, int], interpolation: str = "bicubic") -> torch.Tensor:
    """Frames at `paths` as a (T, 3, H, W) uint8 tensor; each distinct path is decoded once."""
    decoded: dict[str, np.ndarray] = {}
    for path in paths:
        if path not in decoded:
            decoded[path] = decode_frame(path, size, interpolation)
    stack = np.stack([decoded[p] for p in paths])  # (T, H, W, 3)
    return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()
