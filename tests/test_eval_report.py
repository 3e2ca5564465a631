import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

import farreid
from _eval_data import challenge_protocols, frames_on_disk
from farreid.cli import app
from farreid.config.schema import EvalConfig
from farreid.eval import run_evaluation, save_protocol
from farreid.eval.pictures import MATCH, MISMATCH, QUERY, Item, pick_frames, ranked_strip, safe_file_name
from farreid.eval.report import html_table, png_bytes, render_cmc_plot, write_html_report

runner = CliRunner()


def test_ranked_strip_layout_colours_and_missing_frames(tmp_path):
    frames = frames_on_disk(tmp_path / "f")
    query = Item(tuple(frames), "query-name", "query", QUERY)
    gallery = [Item(tuple(frames), "good", "#1", MATCH), Item(("missing.png",), "bad", "#2", MISMATCH)]
    image = ranked_strip(query, gallery, frames_per_item=2, cell=(20, 40), border=3)
    assert image.height > 2 * 40 and image.width > 3 * (20 + 6)
    pixels = np.asarray(image)
    for colour in (QUERY, MATCH, MISMATCH):
        assert (pixels == colour).all(axis=-1).any()


def test_pick_frames_and_safe_names():
    assert pick_frames(["a", "b", "c", "d", "e"], 3) == ["a", "c", "e"]
    assert pick_frames(["a"], 3) == ["a"]
    assert safe_file_name("../x y/<z>") == "x_y_z"
    assert safe_file_name("...") == "item"


def test_html_parts_escape_names(tmp_path):
    table = html_table(["name"], [["<script>alert(1)</script>"]])
    assert "<script>" not in table and "&lt;script&gt;" in table
    png = render_cmc_plot({"A2G": np.linspace(0.2, 1, 20), "unlabelled": np.full(20, np.nan)})
    assert png.startswith(b"\x89PNG")
    path = write_html_report(tmp_path / "r.html", "<b>title</b>", ["<p>x</p>"])
    text = path.read_text()
    assert "&lt;b&gt;title&lt;/b&gt;" in text and "http" not in text.replace("http-equiv", "")


def test_run_evaluation_writes_every_output(tmp_path):
    frames = frames_on_disk(tmp_path / "frames")
    protocols = challenge_protocols(seed=5, nq=6, ng=20, frames=frames)
    protocols[0].query.names[0] = "../<evil name>"
    result = run_evaluation(protocols, tmp_path / "out", EvalConfig(show_queries=2, show_topk=3))
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall_pooled"]["mAP"] == result.pooled.mAP
    assert (out / "summary.txt").read_text().strip() == result.table()
    assert sum(1 for _ in (out / "submission.csv").open()) == 1 + 18
    pictures = sorted((out / "pictures").rglob("*.png"))
    assert len(pictures) == 6 and all(p.resolve().is_relative_to(out.resolve()) for p in pictures)
    assert Image.open(pictures[0]).size[0] > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7  # CMC + 6 pictures
    assert "&lt;evil name&gt;" in html and "<evil name>" not in html


def test_cli_eval_from_a_features_folder(tmp_path):
    for p in challenge_protocols(seed=6, nq=5, ng=15):
        save_protocol(p, tmp_path / "feats")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "-f", str(tmp_path / "feats"), "-o", str(out), "eval.rerank.enabled=true",
                                 "eval.rerank.k1=6", "eval.show_queries=1"])
    assert result.exit_code == 0, result.output
    assert "overall (pooled)" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["rerank"] == {"k1": 6, "k2": 6, "lambda_value": 0.3}
    scored = runner.invoke(app, ["eval", "-f", str(tmp_path / "feats"), "--score-csv", str(out / "submission.csv"),
                                 "eval.junk=tracklet"])
    assert scored.exit_code == 0, scored.output
    assert "A2A" in scored.output


def test_cli_eval_on_one_query_gallery_pair(tmp_path):
    p = challenge_protocols(seed=7, nq=4, ng=9)[1]
    save_protocol(p, tmp_path / "feats")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "--query-features", str(tmp_path / "feats/G2A/query"),
                                 "--gallery-features", str(tmp_path / "feats/G2A/gallery"), "--name", "mine",
                                 "-o", str(out), "eval.show_queries=0"])
    assert result.exit_code == 0, result.output
    assert "mine" in result.output and not (out / "submission.csv").exists()


def test_cli_errors_are_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(farreid.__file__).parents[1])}
    run = subprocess.run([sys.executable, "-m", "farreid", "eval", "-f", str(tmp_path / "nope")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "features folder not found" in run.stderr and "Traceback" not in run.stderr
    result = runner.invoke(app, ["eval", "--query-features", str(tmp_path)])
    assert result.exit_code != 0
