"""Ranked-result pictures: a query tracklet and its top-k gallery tracklets side by side.

Each tracklet is a column of a few evenly spaced frames with a coloured border (blue = query, green = same
identity, red = different identity, grey = unknown label or junk that the metrics ignore), its rank above and
its tracklet name below. Missing frame files become grey placeholders, so a moved data folder still gives a
readable picture.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from farreid.data.decode import to_rgb
from farreid.utils.io import atomic_open
from farreid.utils.log import get_logger

QUERY, MATCH, MISMATCH, NEUTRAL = (40, 90, 210), (30, 160, 60), (210, 40, 40), (150, 150, 150)
log = get_logger("eval.pictures")


@dataclass(frozen=True)
class Item:
    """One tracklet to draw: frame paths, the caption under it, the label above and the border colour."""

    frames: tuple[str, ...]
    name: str
    label: str
    color: tuple[int, int, int]


def pick_frames(frames: Sequence[str], count: int) -> list[str]:
    """`count` evenly spaced frames (all of them when there are fewer)."""
    if len(frames) <= count:
        return list(frames)
    return [frames[int(i)] for i in np.linspace(0, len(frames) - 1, count).round()]


def _frame(path: str, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(path) as img:
            return to_rgb(img).resize(size, Image.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError):
        log.debug(f"frame not readable, drawing a placeholder: {path}")
        return Image.new("RGB", size, (200, 200, 200))


def _column(item: Item, count: int, cell: tuple[int, int], border: int, font, text_h: int, lines: int) -> Image.Image:
    w, h = cell
    col_w = w + 2 * border
    frames = pick_frames(item.frames, count)
    image = Image.new("RGB", (col_w, text_h + count * h + 2 * border + lines * text_h), "white")
    draw = ImageDraw.Draw(image)
    draw.text((2, 1), item.label, fill=(0, 0, 0), font=font)
    draw.rectangle([0, text_h, col_w - 1, text_h + count * h + 2 * border - 1], fill=item.color)
    for k in range(count):
        tile = _frame(frames[k], cell) if k < len(frames) else Image.new("RGB", cell, (235, 235, 235))
        image.paste(tile, (border, text_h + border + k * h))
    chars = max(4, col_w // 6)
    wrapped = textwrap.wrap(item.name, chars, break_long_words=True)[:lines] or [""]
    if len(textwrap.wrap(item.name, chars, break_long_words=True)) > lines:
        wrapped[-1] = wrapped[-1][: chars - 1] + "~"
    for i, line in enumerate(wrapped):
        draw.text((2, text_h + count * h + 2 * border + i * text_h), line, fill=(0, 0, 0), font=font)
    return image


def ranked_strip(
    query: Item, gallery: Sequence[Item], frames_per_item: int = 3, cell: tuple[int, int] = (64, 128),
    border: int = 4, name_lines: int = 3,
) -> Image.Image:
    """One picture: the query column, a gap, then the gallery columns in rank order."""
    font = ImageFont.load_default()
    text_h = 12
    columns = [_column(it, frames_per_item, cell, border, font, text_h, name_lines) for it in [query, *gallery]]
    gap = 6
    width = sum(c.width for c in columns) + gap * len(columns) + 10
    picture = Image.new("RGB", (width, columns[0].height + 8), "white")
    x = 4
    for i, col in enumerate(columns):
        picture.paste(col, (x, 4))
        x += col.width + gap + (10 if i == 0 else 0)
    return picture


def safe_file_name(name: str, limit: int = 80) -> str:
    """A file-name-safe version of a tracklet or protocol name (the real name goes into the report text)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "item"
    return cleaned[:limit]


def save_png(png: bytes, path: Path) -> Path:
    """Write PNG bytes atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(png)
    return path
