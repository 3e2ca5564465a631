"""Everything `farreid eval` produces, from features: metrics table + JSON, challenge CSV, pictures, HTML report.

    <out>/metrics.json        settings, per-protocol metrics and CMC, overall (pooled and mean)
    <out>/summary.txt         the printed table
    <out>/submission.csv      challenge CSV (A2G/G2A/A2A protocols only; also without labels)
    <out>/pictures/<protocol>/<nn>_<query>.png
    <out>/report.html         one self-contained page
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from farreid.config.schema import EvalConfig
from farreid.eval.pictures import MATCH, MISMATCH, NEUTRAL, QUERY, Item, ranked_strip, safe_file_name, save_png
from farreid.eval.protocols import CASE_ORDER, TABLE_METRICS, EvaluationResult, ProtocolData, evaluate_protocols
from farreid.eval.ranking import JunkRule
from farreid.eval.report import figure, html_table, percent, png_bytes, render_cmc_plot, section, write_html_report
from farreid.eval.submission import check_gallery_names, write_submission
from farreid.utils.io import atomic_write_json, atomic_write_text, remove_stale_temps, safe_join
from farreid.utils.log import get_logger

log = get_logger("eval")


@dataclass
class Picture:
    """A saved ranked-result strip and the caption the report shows under it."""

    protocol: str
    path: Path
    png: bytes
    caption: str


def protocol_pictures(
    data: ProtocolData, topk: np.ndarray, out_dir: Path, num_queries: int, junk: JunkRule = JunkRule()
) -> list[Picture]:
    """Strips for `num_queries` evenly spaced queries of a protocol, saved under `out_dir/pictures/<protocol>/`."""
    q, g = data.query, data.gallery
    if num_queries <= 0 or topk.shape[1] == 0:
        return []
    chosen = np.unique(np.linspace(0, len(q) - 1, min(num_queries, len(q))).round().astype(int))
    folder = safe_join(out_dir, "pictures", safe_file_name(data.name))
    pictures = []
    for n, qi in enumerate(chosen):
        query = Item(q.frames[qi], q.names[qi], "query", QUERY)
        gallery, listed = [], []
        for r, gi in enumerate(topk[qi]):
            if not data.labelled or junk.is_junk(q.pids[qi], q.camids[qi], q.names[qi], g.pids[gi], g.camids[gi],
                                                  g.names[gi]):
                color, mark = NEUTRAL, "?" if not data.labelled else "junk"
            else:
                color, mark = (MATCH, "same id") if g.pids[gi] == q.pids[qi] else (MISMATCH, "other id")
            gallery.append(Item(g.frames[gi], g.names[gi], f"#{r + 1}", color))
            listed.append(f"{r + 1}. {g.names[gi]} ({mark})")
        png = png_bytes(ranked_strip(query, gallery))
        path = save_png(png, safe_join(folder, f"{n:02d}_{safe_file_name(q.names[qi])}.png"))
        who = f" (id {q.pids[qi]}, camera {q.camids[qi]})" if data.labelled else ""
        pictures.append(Picture(data.name, path, png, f"{data.name} query {q.names[qi]}{who}: " + "; ".join(listed)))
    return pictures


def evaluation_sections(result: EvaluationResult, pictures: list[Picture]) -> list[str]:
    """The report's sections: summary table, CMC curves, ranked pictures, settings."""
    rows = [(label, counts, *(percent(m.get(k) if m else None) for k in TABLE_METRICS))
            for label, counts, m in result.rows()]
    parts = [section("Summary (%)", html_table(("protocol", "valid/queries", *TABLE_METRICS), rows))]
    curves = {p.name: p.rank.cmc for p in result.labelled}
    if len(result.labelled) > 1:
        curves["overall (pooled)"] = result.pooled.cmc
    if curves:
        parts.append(section("CMC curves", figure(render_cmc_plot(curves), "CMC per protocol")))
    for name in [p.name for p in result.protocols]:
        mine = [p for p in pictures if p.protocol == name]
        if mine:
            legend = "<p>blue = query, green = same identity, red = other identity, grey = junk or unknown.</p>"
            figures = "".join(figure(p.png, p.caption, p.path.name) for p in mine)
            parts.append(section(f"Ranked results: {name}", legend + figures))
    settings = [(k, v) for k, v in result.settings.items()]
    parts.append(section("Settings", html_table(("setting", "value"), settings)))
    return parts


def run_evaluation(
    protocols: list[ProtocolData],
    out_dir: str | Path,
    options: EvalConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    title: str = "farreid evaluation",
) -> EvaluationResult:
    """Evaluate every protocol and write metrics.json, summary.txt, submission.csv, pictures and report.html, as
    `options` (`eval.*`: metric, junk rule, re-ranking, CSV, pictures, ...) asks."""
    options = options or EvalConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)  # left by a killed evaluation
    cases = [p for p in protocols if p.name in CASE_ORDER]
    want_csv = options.write_csv and bool(cases)
    if options.write_csv and not cases:
        log.info(f"no challenge case among protocols {[p.name for p in protocols]}: submission CSV skipped")
    for data in cases if want_csv else []:
        check_gallery_names(data)  # before the long work, not after
    result = evaluate_protocols(protocols, options, device=device, topk=max(options.show_topk, 1),
                                keep_ranking=want_csv)
    table = result.table()
    log.info("evaluation summary (%):\n" + table)
    atomic_write_text(out_dir / "summary.txt", table + "\n")
    atomic_write_json(out_dir / "metrics.json", result.to_dict())
    by_name = {p.name: p for p in protocols}
    if want_csv:
        rankings = {p.name: (by_name[p.name], p.ranking) for p in result.protocols if p.name in CASE_ORDER}
        rows = write_submission(out_dir / "submission.csv", rankings)
        log.info(f"wrote {out_dir / 'submission.csv'} ({rows} rows)")
    for p in result.protocols:
        p.ranking = None  # the whole order is only needed for the CSV; free it
    pictures = []
    junk = JunkRule(options.junk)
    for p in result.protocols:
        pictures += protocol_pictures(by_name[p.name], p.topk[:, :options.show_topk], out_dir, options.show_queries,
                                      junk)
    write_html_report(out_dir / "report.html", title, evaluation_sections(result, pictures))
    log.info(f"wrote {out_dir / 'report.html'}")
    return result
