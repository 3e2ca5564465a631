"""The demo's report: one offline HTML page a person reads top to bottom.

Data (statistics and sample frames per platform and altitude), training (loss, learning rate, validation mAP),
results (table, CMC curves per protocol, ranked pictures), and what produced them (config, versions).
Built from `farreid.eval.report` parts; every name from data is escaped there.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from farreid.config import Config, config_to_yaml
from farreid.data import ReIDDataset, Tracklet
from farreid.data.tracklet import stats_rows
from farreid.eval.protocols import CASE_ORDER
from farreid.eval.report import figure, html_table, render_cmc_plot, section, write_html_report
from farreid.report.plots import render_line_plot, tracklet_grid
from farreid.utils.log import read_metrics
from farreid.utils.run import run_metadata

if TYPE_CHECKING:
    from farreid.demo import Variant

ABLATION_NOTE = (
    "The rows differ in one thing at a time: training (untrained vs trained), temporal pooling (mean vs "
    "attention; both trained from the same stage-1 prompts for the same number of steps and evaluated at the "
    "end of training) and k-reciprocal "
    "re-ranking at test time. On a data set this small, differences of a few points are within run-to-run noise; "
    "the table reports what this run measured and declares no winner."
)


def _variant_name(v: "Variant") -> str:
    return f"{v.label}, {v.pooling} pooling" + (", re-ranked" if v.rerank else "")


def data_section(dataset: ReIDDataset, root: str) -> str:
    header, rows = stats_rows(dataset.splits())
    samples = sample_tracklets(dataset.train)
    captions = [_caption(t) for t in samples]
    grid = tracklet_grid(samples, captions, cell=(56, 112))
    return section(
        "Data",
        f"<p>Synthetic aerial-ground data in the DetReIDX layout at <code>{html.escape(root)}</code>: rendered "
        "people with identity-specific clothing, ground views large and sharp, aerial views small, blurred and "
        "foreshortened at several altitudes, two aerial sessions. Test identities are disjoint from training ones.</p>"
        + html_table(header, rows)
        + figure(grid, "One training identity as the model sees it: the ground tracklets, then its aerial "
                 "tracklets by altitude (each column: 4 frames of one tracklet, all drawn at the same size; the "
                 "caption gives the stored crop size).", "sample frames per platform and altitude"),
    )


def sample_tracklets(train: Sequence[Tracklet], limit: int = 8) -> list[Tracklet]:
    """The tracklets of the training identity with the most aerial altitudes: ground first, then by altitude."""
    by_pid: dict[int, list[Tracklet]] = {}
    for t in train:
        by_pid.setdefault(t.pid, []).append(t)
    best = max(by_pid.values(), key=lambda ts: (len({t.altitude for t in ts if t.platform == "aerial"}), -ts[0].pid))
    ground = [t for t in best if t.platform == "ground"]
    aerial = sorted((t for t in best if t.platform == "aerial"), key=lambda t: (t.altitude or 0, t.distance or 0))
    return (ground[:2] + aerial)[:limit]


def _caption(t: Tracklet) -> str:
    from PIL import Image

    with Image.open(t.frames[0]) as img:
        size = f"{img.width}x{img.height}px"
    if t.platform == "ground":
        return f"ground\n{size}"
    return f"aerial S{t.session}\n{t.altitude:g} m up\n{t.distance:g} m, {t.pitch:g} deg\n{size}"


def training_section(runs: dict[str, Path]) -> str:
    loss, lr, val = {}, {}, {}
    for name, run_dir in runs.items():
        records = read_metrics(Path(run_dir) / "log.jsonl")
        for stage in ("stage1", "stage2"):
            epochs = [r for r in records if r["event"] == "epoch" and r.get("stage") == stage]
            if epochs:
                key = f"{name}: {stage}"
                loss[key] = ([r["epoch"] for r in epochs], [r["loss"] for r in epochs])
                lr[key] = ([r["epoch"] for r in epochs], [r["lr"] for r in epochs])
        checks = [r for r in records if r["event"] == "validation"]
        if checks:
            val[name] = ([r["epoch"] for r in checks], [100 * r["mAP"] for r in checks])
    body = figure(render_line_plot(loss, "epoch", "total loss (epoch mean)", "Training loss", logy=True),
                  "Total loss per epoch: stage 1 learns identity prompts, stage 2 adapts the image side.")
    body += figure(render_line_plot(lr, "epoch", "learning rate", "Learning rate (warm-up, then cosine)"),
                   "Base learning rate at the end of each epoch.")
    if val:
        body += figure(render_line_plot(val, "epoch", "mAP (%)", "Validation mAP on held-out training identities"),
                       "Validation uses identities held out from training, never the test split.")
    return section("Training", body)


def results_section(variants: list["Variant"], header: list[str], rows: list[list[str]]) -> str:
    parts = [html_table(header, rows), f"<p>{html.escape(ABLATION_NOTE)}</p>"]
    for protocol in CASE_ORDER:
        curves = {}
        for v in variants:
            rank = next((p.rank for p in v.result.protocols if p.name == protocol and p.rank is not None), None)
            if rank is not None:
                curves[_variant_name(v)] = rank.cmc[:20]
        if curves:
            parts.append(figure(render_cmc_plot(curves, f"CMC, {protocol}"), f"CMC curves for {protocol} (ranks 1-20)."))
    return section("Results (%)", "".join(parts))


def pictures_section(variant: "Variant") -> str:
    pictures = sorted((variant.eval_dir / "pictures").glob("*/*.png"))
    order = {name: i for i, name in enumerate(CASE_ORDER)}
    pictures.sort(key=lambda p: (order.get(p.parent.name, 99), p.name))
    legend = ("<p>Model: " + html.escape(_variant_name(variant)) + ". Each strip: the query (blue), then its "
              "top-ranked gallery tracklets; green = same identity, red = another identity.</p>")
    figs = "".join(figure(p.read_bytes(), f"{p.parent.name}: {p.stem}") for p in pictures)
    return section("Ranked results", legend + figs)


def provenance_section(cfg: Config, seconds: float, variants: list["Variant"]) -> str:
    meta = run_metadata()
    versions = [(k, v or "not installed") for k, v in meta["versions"].items()]
    facts = [("wall time", f"{seconds / 60:.1f} min"), ("git revision", meta["git_revision"] or "unknown"),
             ("python", meta["python"]), ("platform", meta["platform"]), ("torch threads", meta["torch_threads"])]
    evals = "".join(f"<li><code>{html.escape(str(v.eval_dir))}</code></li>" for v in variants)
    return section(
        "How this was produced",
        html_table(("what", "value"), facts) + html_table(("package", "version"), versions)
        + "<p>Per-variant evaluation folders (metrics.json, submission.csv, report.html):</p><ul>" + evals + "</ul>"
        + "<details><summary>resolved configuration</summary><pre>" + html.escape(config_to_yaml(cfg)) + "</pre></details>",
    )


def write_demo_report(path: Path, *, cfg: Config, dataset: ReIDDataset, variants: list["Variant"],
                      runs: dict[str, Path], seconds: float) -> Path:
    from farreid.demo import result_rows

    header, rows = result_rows(variants)
    best = max((v for v in variants if v.label == "trained" and not v.rerank),
               key=lambda v: v.result.pooled.mAP if v.result.pooled else -1.0)
    sections = [
        section("What ran", "<p>" + html.escape(
            "farreid demo: synthetic data, then the demo_tiny recipe (a tiny CLIP-style ViT with video adapters, "
            "platform prompts and temporal pooling, trained from scratch on the CPU), then evaluation of the "
            f"aerial-to-ground, ground-to-aerial and aerial-to-aerial protocols; {seconds / 60:.1f} minutes in all."
        ) + "</p>"),
        results_section(variants, header, rows),
        data_section(dataset, cfg.data.root),
        training_section(runs),
        pictures_section(best),
        provenance_section(cfg, seconds, variants),
    ]
    subtitle = f"seed {cfg.seed}, {seconds / 60:.1f} min"
    return write_html_report(path, "farreid demo report", sections, subtitle=subtitle)
