"""A self-contained HTML report (no scripts, no CDN; pictures embedded as PNG data URIs) built from small parts.

The parts are composable so other reports (the demo) can reuse them: `plot_png`, `render_cmc_plot`,
`png_bytes`, `image_tag`, `html_table`, `write_html_report`. Every name that comes from data is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from farreid.utils.io import atomic_write_text

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #444; word-break: break-all; }
img { max-width: 100%; height: auto; }
.meta { color: #666; font-size: .9em; }
"""


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def image_tag(png: bytes, alt: str) -> str:
    """An <img> holding the PNG itself (base64), so the report is one portable file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table with every cell escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot_png(draw: Callable, figsize: tuple[float, float] = (6.4, 4.0)) -> bytes:
    """`draw(ax)` on a fresh off-screen figure with a light grid, returned as PNG bytes; the figure is always
    closed (a long evaluation makes many plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=100)
    try:
        draw(ax)
        ax.grid(alpha=0.3)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def render_cmc_plot(curves: dict[str, np.ndarray], title: str = "CMC", max_rank: int | None = None) -> bytes:
    """CMC curves (rank 1..len) as a PNG, one line per name; NaN curves (unlabelled) are skipped."""

    def draw(ax) -> None:
        for name, cmc in curves.items():
            cmc = np.asarray(cmc, dtype=float)[:max_rank]
            if len(cmc) and not np.isnan(cmc).all():
                ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=name, linewidth=1.6)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_title(title)
        ax.set_ylim(0, 100)
        if ax.lines:
            ax.legend(loc="lower right")

    return plot_png(draw)


def section(heading: str, body_html: str) -> str:
    return f"<section><h2>{html.escape(heading)}</h2>\n{body_html}\n</section>"


def figure(png: bytes, caption: str, alt: str | None = None) -> str:
    return f"<figure>{image_tag(png, alt or caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def percent(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def write_html_report(path: str | Path, title: str, sections: Sequence[str], subtitle: str = "") -> Path:
    """Assemble `sections` (HTML fragments, e.g. from `section`) into one page, written atomically."""
    stamp = time.strftime("%Y-%m-%d %H:%M")
    meta = html.escape(" - ".join(filter(None, [subtitle, stamp])))
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1><p class=\"meta\">{meta}</p>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    atomic_write_text(path, page)
    return Path(path)
