"""`farreid score`: a challenge submission CSV scored against labels gives the numbers `farreid eval` gives;
the trapezoid AP of the VReID-XFD CSV scorer on hand-computed cases; one clear error per malformed file."""

import csv
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from _eval_data import challenge_protocols
from farreid.cli import app
from farreid.errors import FarreidError
from farreid.eval import evaluate_rank, save_protocol
from farreid.eval.labels import read_labels
from farreid.eval.submission import score_submission

runner = CliRunner()


def _ap(ranked_is_positive, interpolation):
    """AP of one query from its kept ranking (True = positive), by the definitions in eval/metrics.py."""
    positions = np.arange(len(ranked_is_positive), dtype=np.float64)
    pids = np.where(ranked_is_positive, 1, 2)
    return evaluate_rank(positions[None, :], np.array([1]), pids, junk="tracklet", q_names=["q"],
                         g_names=[f"g{i}" for i in range(len(pids))], ap_interpolation=interpolation).ap[0]


@pytest.mark.parametrize("hits, exact, trapezoid", [
    ([1, 0, 1, 0], (1 + 2 / 3) / 2, (1 + (1 / 2 + 2 / 3) / 2) / 2),  # ranks 1, 3: before-precisions 1, 1/2
    ([0, 1, 0, 1], (1 / 2 + 2 / 4) / 2, ((0 + 1 / 2) / 2 + (1 / 3 + 2 / 4) / 2) / 2),  # ranks 2, 4
    ([1, 1, 0], 1.0, 1.0),  # rank 2 after a hit: before-precision 1/1
    ([0, 0, 0, 1], 1 / 4, (0 + 1 / 4) / 2),
])
def test_trapezoid_ap_on_hand_computed_cases(hits, exact, trapezoid):
    assert _ap(np.array(hits, bool), "none") == pytest.approx(exact, abs=1e-12)
    assert _ap(np.array(hits, bool), "trapezoid") == pytest.approx(trapezoid, abs=1e-12)


def _scorer_formula(order, good, junk):
    """The VReID-XFD CSV scorer's AP, restated: junk removed, then per good hit i (0-based) at kept row r the
    mean of the precision (i+1)/(r+1) and the precision before it, i/r (1 when r = 0), averaged over the goods."""
    kept = [g for g in order if g not in junk]
    rows = [r for r, g in enumerate(kept) if g in good]
    return sum(((i / r if r else 1.0) + (i + 1) / (r + 1)) / 2 for i, r in enumerate(rows)) / len(good)


def test_trapezoid_ap_matches_the_scorer_formula_with_junk():
    rng = np.random.default_rng(4)
    for _ in range(30):
        g = int(rng.integers(3, 12))
        g_pids = rng.integers(0, 3, g)
        g_pids[0] = 0  # at least one same-identity item
        g_names = [f"g{i}" for i in range(g)]
        q_name = g_names[int(rng.integers(g))] if rng.random() < 0.5 else "q"  # sometimes its own tracklet: junk
        dist = rng.random(g)
        result = evaluate_rank(dist[None, :], np.array([0]), g_pids, junk="tracklet", q_names=[q_name],
                               g_names=g_names, ap_interpolation="trapezoid")
        order = list(np.argsort(dist, kind="stable"))
        junk = {i for i in range(g) if g_names[i] == q_name}
        good = {i for i in range(g) if g_pids[i] == 0 and i not in junk}
        if good:
            assert result.ap[0] == pytest.approx(_scorer_formula(order, good, junk), abs=1e-12)


def _write_labels(path, protocols):
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case", "split", "tracklet", "pid", "camid"])
        for p in protocols:
            for split, part in (("query", p.query), ("gallery", p.gallery)):
                writer.writerows([p.name, split, n, int(i), int(c)] for n, i, c in zip(part.names, part.pids, part.camids))
    return path


@pytest.fixture()
def evaluated(tmp_path):
    """Feature sets of three cases, evaluated by `farreid eval` (metrics.json + submission.csv), and their labels."""
    protocols = challenge_protocols(seed=5, nq=9, ng=25)
    for p in protocols:
        save_protocol(p, tmp_path / "features")
    result = runner.invoke(app, ["eval", "-f", str(tmp_path / "features"), "-o", str(tmp_path / "eval"),
                                 "eval.show_queries=0", "eval.map_at=[5,20]"])
    assert result.exit_code == 0, result.output
    return tmp_path, protocols, _write_labels(tmp_path / "labels.csv", protocols)


def test_score_round_trips_with_eval(evaluated):
    root, _, labels = evaluated
    result = runner.invoke(app, ["score", "-s", str(root / "eval/submission.csv"), "-l", str(labels),
                                 "-o", str(root / "score"), "--map-at", "5", "--map-at", "20"])
    assert result.exit_code == 0, result.output
    assert "mAP@20" in result.output.splitlines()[0] and "overall (pooled)" in result.output
    ours = json.loads((root / "eval/metrics.json").read_text())
    scored = json.loads((root / "score/metrics.json").read_text())
    for name in ("A2G", "G2A", "A2A"):
        a, b = ours["protocols"][name], scored["protocols"][name]
        for key in ("mAP", "R1", "R5", "R10", "R20", "mINP", "mAP@5", "mAP@20", "num_valid"):
            assert b[key] == pytest.approx(a[key], abs=1e-12), (name, key)
        assert b["cmc"] == pytest.approx(a["cmc"], abs=1e-12)
    for key in ("mAP", "R1", "mINP", "mAP@20"):
        assert scored["overall_pooled"][key] == pytest.approx(ours["overall_pooled"][key], abs=1e-12)
        assert scored["overall_mean"][key] == pytest.approx(ours["overall_mean"][key], abs=1e-12)


def test_score_trapezoid_option_changes_only_map(evaluated):
    root, _, labels = evaluated
    plain = runner.invoke(app, ["score", "-s", str(root / "eval/submission.csv"), "-l", str(labels), "-o",
                                str(root / "a"), "eval.junk=tracklet"])
    trap = runner.invoke(app, ["score", "-s", str(root / "eval/submission.csv"), "-l", str(labels), "-o",
                               str(root / "b"), "eval.junk=tracklet", "--ap-interpolation", "trapezoid"])
    assert plain.exit_code == trap.exit_code == 0, plain.output + trap.output
    a, b = (json.loads((root / d / "metrics.json").read_text())["protocols"]["A2G"] for d in ("a", "b"))
    assert a["R1"] == b["R1"] and a["mINP"] == b["mINP"] and a["cmc"] == b["cmc"]
    assert a["mAP"] != b["mAP"]
    assert json.loads((root / "b/metrics.json").read_text())["settings"]["ap_interpolation"] == "trapezoid"


def _rewrite(path, edit):
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(edit(rows))


def _swap_first_gallery(rows, name):
    ranked = rows[1][3].split(" ")
    ranked[0] = name
    return rows[:1] + [rows[1][:3] + [" ".join(ranked)]] + rows[2:]


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[:1] + rows[2:], r"A2G query '\w+' has no row; each of its 9 queries"),
    (lambda rows: rows[:2] + rows[1:], "is listed again .*each query exactly once"),
    (lambda rows: rows[:1] + [rows[1][:2] + ["nobody"] + rows[1][3:]] + rows[2:], "unknown A2G query tracklet 'nobody'"),
    (lambda rows: _swap_first_gallery(rows, "ghost"), "line 2: unknown A2G gallery tracklet 'ghost'"),
    (lambda rows: _swap_first_gallery(rows, rows[1][3].split(" ")[1]), "line 2: gallery tracklet .* appears twice"),
    (lambda rows: [["row_id", "case", "query", "ranked"]] + rows[1:], "header must be row_id,case,query_tracklet"),
    (lambda rows: rows[:1] + [rows[1][:1] + ["Case 4: Aerial to Space"] + rows[1][2:]] + rows[2:], "unknown case"),
])
def test_score_rejects_malformed_submissions(evaluated, edit, message):
    root, protocols, labels = evaluated
    path = root / "eval/submission.csv"
    _rewrite(path, edit)
    with pytest.raises(FarreidError, match=message):
        score_submission(path, read_labels(labels))
    result = runner.invoke(app, ["score", "-s", str(path), "-l", str(labels)])
    assert result.exit_code != 0 and isinstance(result.exception, FarreidError)


def test_labels_file_errors_and_cases_without_labels(evaluated, tmp_path):
    root, protocols, _ = evaluated
    only_a2g = _write_labels(tmp_path / "a2g.csv", protocols[:1])
    with pytest.raises(FarreidError, match="rows for A2A, G2A, which the labels do not cover"):
        score_submission(root / "eval/submission.csv", read_labels(only_a2g))
    bad = tmp_path / "bad.csv"
    bad.write_text("case,split,name,pid,camid\n")
    with pytest.raises(FarreidError, match="header must be case,split,tracklet,pid,camid"):
        read_labels(bad)
    bad.write_text("case,split,tracklet,pid,camid\nA2G,probe,x,1,0\n")
    with pytest.raises(FarreidError, match="split must be query or gallery"):
        read_labels(bad)
    bad.write_text("case,split,tracklet,pid,camid\nCase 1: Aerial to Ground,query,x,1.5,0\n")
    with pytest.raises(FarreidError, match="pid and camid must be integers"):
        read_labels(bad)
    result = runner.invoke(app, ["score", "-s", str(root / "eval/submission.csv"), "-l", str(tmp_path / "none")])
    assert "neither a labels CSV nor a dataset folder" in str(result.exception)


def _undefined(value) -> bool:
    """NaN in metrics.json (written as NaN or as null)."""
    return value is None or math.isnan(value)


def test_top_k_leaderboard_form_scores_what_its_depth_decides(evaluated):
    """The AG-VPReID form (row_id,query_tracklet,gallery_tracklets; top 10): cases found from the query names,
    CMC and mAP@k up to the depth equal the full ranking's, deeper metrics are not computed."""
    root, _, labels = evaluated
    with (root / "eval/submission.csv").open(newline="") as fh:
        full = list(csv.reader(fh))[1:]
    top = root / "top10.csv"
    with top.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row_id", "query_tracklet", "gallery_tracklets"])
        writer.writerows([i + 1, row[2], " ".join(row[3].split(" ")[:10])] for i, row in enumerate(full))
    args = ["-l", str(labels), "eval.junk=tracklet", "--map-at", "5", "--map-at", "20"]
    whole = runner.invoke(app, ["score", "-s", str(root / "eval/submission.csv"), "-o", str(root / "w"), *args])
    short = runner.invoke(app, ["score", "-s", str(top), "-o", str(root / "t"), *args])
    assert whole.exit_code == short.exit_code == 0, whole.output + short.output
    w, t = (json.loads((root / d / "metrics.json").read_text()) for d in ("w", "t"))
    for name in ("A2G", "G2A", "A2A", None):
        a = w["protocols"][name] if name else w["overall_pooled"]
        b = t["protocols"][name] if name else t["overall_pooled"]
        for key in ("R1", "R5", "R10", "mAP@5"):
            assert b[key] == pytest.approx(a[key], abs=1e-12), (name, key)
        assert all(_undefined(b[key]) for key in ("mAP", "mINP", "R20", "mAP@20"))
        assert b["cmc"][:10] == pytest.approx(a["cmc"][:10]) and all(_undefined(v) for v in b["cmc"][10:])
    assert " - " in short.output.splitlines()[2]  # undefined columns print as "-"
    camera = runner.invoke(app, ["score", "-s", str(top), "-l", str(labels)])
    assert "score it with eval.junk=tracklet" in str(camera.exception)
