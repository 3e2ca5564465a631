"""Line plots and picture grids for reports (matplotlib Agg, PIL); each returns PNG bytes."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from farreid.data import Tracklet
from farreid.eval.pictures import pick_frames
from farreid.eval.report import plot_png, png_bytes

Series = dict[str, tuple[Sequence[float], Sequence[float]]]


def render_line_plot(series: Series, xlabel: str, ylabel: str, title: str, logy: bool = False) -> bytes:
    """One line per name; names with no points are skipped."""

    def draw(ax) -> None:
        for name, (xs, ys) in series.items():
            if len(xs):
                ax.plot(list(xs), list(ys), label=name, linewidth=1.5, marker="o" if len(xs) < 30 else None)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if logy:
            ax.set_yscale("log")
        if len(ax.lines) > 1:
            ax.legend(fontsize="small")

    return plot_png(draw, figsize=(6.4, 3.6))


def tracklet_grid(tracklets: Sequence[Tracklet], captions: Sequence[str], frames: int = 4,
                  cell: tuple[int, int] = (48, 96)) -> bytes:
    """Columns of `frames` evenly spaced frames, one column per tracklet, caption lines underneath.

    Frames are shown at the same cell size whatever their stored size, and the caption gives the stored size,
    so the blur of a 12-pixel aerial crop next to a sharp ground crop is what the reader sees.
    """
    font = ImageFont.load_default()
    w, h = cell
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    text_h = 11 * lines + 4
    gap = 6
    grid = Image.new("RGB", (len(tracklets) * (w + gap) + gap, frames * h + text_h + 2 * gap), "white")
    draw = ImageDraw.Draw(grid)
    for col, (tracklet, caption) in enumerate(zip(tracklets, captions)):
        x = gap + col * (w + gap)
        for row, path in enumerate(pick_frames(tracklet.frames, frames)):
            with Image.open(path) as img:
                grid.paste(img.convert("RGB").resize(cell, Image.NEAREST), (x, gap + row * h))
        draw.multiline_text((x, gap + frames * h + 3), caption, fill=(0, 0, 0), font=font, spacing=1)
    return png_bytes(grid)


FAULT_LABELS = {"motion_blur": "blur", "occlusion": "occluded"}
FAULT_COLOURS = {"clean": (90, 150, 90), "drift": (200, 120, 30), "occlusion": (170, 60, 170), "motion_blur": (200, 50, 50)}


def attention_strips(rows: Sequence[tuple[str, Sequence[str], Sequence[float], Sequence[str]]],
                     cell: tuple[int, int] = (40, 80)) -> bytes:
    """One strip per tracklet: its sampled frames, under each a bar of its pooling weight (relative to a uniform
    share; the dashed line is 1) coloured by what the frame holds. rows: (title, frame paths, weights, kinds)."""
    font = ImageFont.load_default()
    w, h = cell
    bar_h, text_h, title_h, gap = 40, 12, 14, 4
    width = gap + max((len(paths) for _, paths, _, _ in rows), default=1) * (w + gap)
    strip = title_h + h + bar_h + text_h + 2 * gap
    image = Image.new("RGB", (width, strip * len(rows) + gap), "white")
    draw = ImageDraw.Draw(image)
    for r, (title, paths, weights, kinds) in enumerate(rows):
        top = gap + r * strip
        draw.text((gap, top), title, fill=(0, 0, 0), font=font)
        scale = len(weights)  # weight x T: 1 = the uniform share
        for i, (path, weight, kind) in enumerate(zip(paths, weights, kinds)):
            x = gap + i * (w + gap)
            with Image.open(path) as img:
                image.paste(img.convert("RGB").resize(cell, Image.NEAREST), (x, top + title_h))
            base = top + title_h + h + bar_h
            rel = min(weight * scale, 3.0)
            draw.rectangle((x + 4, base - rel / 3.0 * bar_h, x + w - 4, base), fill=FAULT_COLOURS.get(kind, (120, 120, 120)))
            uniform = base - bar_h / 3.0
            for dx in range(0, w, 4):
                draw.line((x + dx, uniform, x + min(dx + 2, w), uniform), fill=(0, 0, 0))
            draw.text((x, base + 1), FAULT_LABELS.get(kind, kind), fill=(0, 0, 0), font=font)
    return png_bytes(image)
