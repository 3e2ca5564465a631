"""The newcomer's walk on their own footage, exactly as README.md and docs/footage.md show it: a video and its
MOT tracks -> tracklets (from-mot) -> stats -> extract -> search -> eval, on the generated example of
tests/_footage.py with the tiny test checkpoint standing in for the demo's."""

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from _footage import write_footage
from _inference_data import one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from farreid.eval.pictures import MATCH, MISMATCH

pytest.importorskip("av")
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def shown_commands(page: Path, heading: str) -> list[list[str]]:
    """The farreid commands of the first bash block after `heading` (comments dropped, .venv/bin/ prefix removed)."""
    text = page.read_text()
    start = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] in ("farreid", ".venv/bin/farreid"), line
            commands.append(words[1:])
    return commands


README_COMMANDS = shown_commands(REPO / "README.md", "## Your own footage")


def test_readme_and_docs_show_the_same_walk():
    assert [c[0] for c in README_COMMANDS] == ["data", "data", "extract", "search", "eval"]
    assert shown_commands(REPO / "docs" / "footage.md", "## The walk") == README_COMMANDS


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Run the README's commands in a fresh folder holding the example footage and a checkpoint at the demo's
    place; returns (folder, {command name: output})."""
    trained = tiny_trained(tmp_path_factory)
    root = tmp_path_factory.mktemp("footage_walk")
    write_footage(root)
    (root / "runs" / "demo" / "trained" / "checkpoints").mkdir(parents=True)
    shutil.copy(trained.checkpoint, root / "runs" / "demo" / "trained" / "checkpoints" / "best.pt")
    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for args in README_COMMANDS:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.output, result.exception)
            outputs[args[0] if args[0] != "data" else args[1]] = result.output
    return root, outputs


def test_from_mot_and_stats(walk):
    root, out = walk
    page = (REPO / "docs" / "footage.md").read_text()
    line = ("wrote 9 tracklets (68 crops) from 3 tracks to footage/gallery; skipped 0 degenerate boxes, "
            "dropped 0 short pieces")
    assert line in out["from-mot"] and line in page  # the car (class 3) and the hidden boxes are filtered out
    filtered = ("96 rows, 68 boxes of 3 tracks kept; left out 0 without track id, 0 below min_conf, "
                "24 of other classes, 4 less")
    assert filtered in out["from-mot"] and filtered in page  # the car's 24 rows, person 3's 4 hidden boxes
    rows = list(csv.DictReader((root / "footage" / "tracklets.csv").open()))
    assert len(rows) == 9 and {r["camid"] for r in rows} == {"1"}
    assert {r["source"] for r in rows} == {str((root / "cam1_gt.txt").resolve())}
    assert not (root / "footage" / "gallery" / "0009").exists()  # the parked car
    stats_row = next(line for line in out["stats"].splitlines() if line.startswith("gallery"))
    assert stats_row.split()[:5] == ["gallery", "3", "9", "68", "1"] and stats_row in page  # ids, ..., cameras
    default = runner.invoke(app, ["data", "stats", "-r", str(root / "footage")])  # data.dataset is detreidx
    assert default.exit_code != 0 and "pass -d folder" in str(default.exception)


def test_extract_keeps_camera_and_identity(walk):
    root, _ = walk
    rows = list(csv.DictReader((root / "feats" / "gallery" / "meta.csv").open()))
    assert len(rows) == 9 and {r["camid"] for r in rows} == {"1"} and {r["pid"] for r in rows} == {"1", "2", "3"}
    assert "0001/0001_c1_f000001" in {r["name"] for r in rows}


def test_search_reads_the_query_like_the_gallery_and_leaves_it_out(walk):
    root, out = walk
    page = (REPO / "docs" / "footage.md").read_text()
    head = "query 0001/0001_c1_f000001 (pid 1, camera 1, ground)"
    assert head in out["search"] and head in page
    ranking = list(csv.DictReader((root / "search-results" / "ranking.csv").open()))
    assert len(ranking) == 5 and "0001/0001_c1_f000001" not in {r["tracklet"] for r in ranking}
    assert "own tracklet is left out" in out["search"]
    picture = np.asarray(Image.open(next((root / "search-results" / "pictures").glob("*.png"))).convert("RGB"))
    coloured = [np.all(picture == colour, axis=-1).sum() for colour in (MATCH, MISMATCH)]
    assert sum(coloured) > 0  # borders say same / other identity, not grey "unknown"
    kept = runner.invoke(app, ["search", "-g", str(root / "feats" / "gallery"), "-q",
                               str(root / "footage" / "gallery" / "0001" / "0001_c1_f000001"), "-k", "1",
                               "--keep-self", "-o", str(root / "kept")])
    assert kept.exit_code == 0 and "0001/0001_c1_f000001" in kept.output.split("ground)")[1]


def test_eval_of_one_camera(walk):
    root, out = walk
    page = (REPO / "docs" / "footage.md").read_text()
    summary = next(line for line in out["eval"].splitlines() if line.startswith("test "))
    assert summary.split()[1:3] == ["9/9", "9"]
    metrics = json.loads((root / "evaluation" / "metrics.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"))
    assert metrics["settings"]["junk"] == "tracklet" and metrics["protocols"]["test"]["num_valid"] == 9
    assert list((root / "evaluation" / "pictures" / "test").glob("*.png"))
    gallery = str(root / "feats" / "gallery")
    camera_rule = runner.invoke(app, ["eval", "--query-features", gallery, "--gallery-features", gallery,
                                      "-o", str(root / "e2")])
    assert camera_rule.exit_code != 0
    message = str(camera_rule.exception)
    assert "no query has its identity in another camera" in message and "eval.junk=tracklet" in message
    assert "eval.junk=tracklet: only the query's own tracklet is left out" in page
    lone = runner.invoke(app, ["eval", "-f", str(root / "feats"), "-o", str(root / "e3")])
    assert lone.exit_code != 0 and "--query-features" in str(lone.exception)


def test_a_split_folder_alone_keeps_the_layout_metadata(walk):
    """`extract -i footage/gallery` (one split of the layout) reads the same pids and cameras as `-i footage`."""
    root, _ = walk
    out = root / "feats_split"
    result = runner.invoke(app, ["extract", "--checkpoint", str(root / "runs" / "demo" / "trained"),
                                 "-i", str(root / "footage" / "gallery"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    whole = list(csv.DictReader((root / "feats" / "gallery" / "meta.csv").open()))
    alone = list(csv.DictReader((out / "meta.csv").open()))
    key = [(r["name"], r["pid"], r["camid"], r["platform"]) for r in whole]
    assert [(r["name"], r["pid"], r["camid"], r["platform"]) for r in alone] == key


def test_query_and_gallery_splits_evaluate_across_cameras(walk, tmp_path):
    """A second camera written as the query split: extract mirrors both splits, `eval -f` reads them as `test`
    with the default (camera) junk rule. The example's video stands in for the second camera."""
    root, _ = walk
    footage = tmp_path / "footage"
    shutil.copytree(root / "footage", footage)
    steps = [
        ["data", "from-mot", "--video", str(root / "cam1.mp4"), "--tracks", str(root / "cam1_gt.txt"), "--out",
         str(footage), "--camid", "2", "--split", "query", "--max-len", "8"],
        ["extract", "--checkpoint", str(root / "runs" / "demo" / "trained"), "-i", str(footage), "-o",
         str(tmp_path / "feats")],
        ["eval", "-f", str(tmp_path / "feats"), "-o", str(tmp_path / "evaluation")],
    ]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    assert sorted(p.name for p in (tmp_path / "feats").iterdir()) == ["gallery", "query"]
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert metrics["settings"]["junk"] == "camera" and metrics["protocols"]["test"]["num_valid"] == 9
