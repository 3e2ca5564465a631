"""Evaluation inputs, partial results and spreadsheet safety.

Labels must be integers (float pids are never cast: 0.6 and 0.4 are not one identity) and camera ids numbers;
NaN or infinite features or distances are one clear error on every path (labelled, anonymised, streamed search,
re-ranking from matrices); an evaluation never reports some protocols as if they were all; names a spreadsheet
would run as formulas are neutralised in the CSVs we write, and read back exactly."""

import csv

import numpy as np
import pytest
import torch

from _eval_data import challenge_protocols
from _hardening import cli_error
from farreid.config.schema import EvalConfig
from farreid.errors import FarreidError
from farreid.eval import (
    FeatureSet,
    ProtocolData,
    evaluate_rank,
    load_protocols,
    re_ranking,
    read_submission,
    rerank_matrix_chunks,
    run_evaluation,
    save_protocol,
    score_submission,
)
from farreid.eval.features import write_feature_shard


def _saved(tmp_path, anonymised=False):
    root = tmp_path / "features"
    for p in challenge_protocols(nq=4, ng=8, anonymised=anonymised):
        save_protocol(p, root)
    return root


def _edit_meta(folder, column, value):
    path = folder / "meta.csv"
    rows = list(csv.DictReader(path.open()))
    rows[0][column] = value
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _nan_row(folder):
    from safetensors.torch import load_file

    features = load_file(str(folder / "features.safetensors"))["features"]
    features[1, 3] = float("nan")
    write_feature_shard(folder / "features.safetensors", features)


def _feature_set(**change):
    base = dict(features=torch.randn(2, 4), names=["a", "b"], pids=[1, 2], camids=[0, 1], platforms=["aerial"] * 2)
    return FeatureSet(**{**base, **change})


Q, G = np.array([0.6, 0.4]), np.array([0.6, 0.4, 0.4])
LABEL_CASES = {
    "evaluate_rank: float pids": (lambda t: evaluate_rank(np.zeros((2, 3)), Q, G, [0, 0], [1, 1, 1]), "pids must be integers"),
    "evaluate_rank: string camera ids": (lambda t: evaluate_rank(np.zeros((1, 1)), [1], [1], ["c0"], ["c1"]), "camera ids"),
    "FeatureSet: float pids": (lambda t: _feature_set(pids=[0.6, 0.4]), "pids must be integers"),
    "FeatureSet: string camera ids": (lambda t: _feature_set(camids=["c0", "c1"]), "camera ids must be integers"),
    "eval -f: float pid in meta.csv": (
        lambda t: _edit_meta(_saved(t) / "A2G" / "query", "pid", "0.6") or load_protocols(t / "features"), "line 2"),
    "eval -f: string camid in meta.csv": (
        lambda t: _edit_meta(_saved(t) / "A2G" / "gallery", "camid", "c0") or load_protocols(t / "features"), "'c0'"),
}


@pytest.mark.parametrize("run, words", LABEL_CASES.values(), ids=LABEL_CASES.keys())
def test_labels_that_are_not_integers_are_refused(run, words, tmp_path):
    with pytest.raises(FarreidError, match=words):
        run(tmp_path)


def test_integer_valued_float_labels_are_exact_and_accepted():
    result = evaluate_rank(np.array([[0.0, 1.0]]), np.array([1.0]), np.array([1.0, 2.0]), [0], [1, 1])
    assert result.mAP == 1.0


def _nan_features_cli(anonymised, side, command):
    def run(tmp_path, capsys):
        root = _saved(tmp_path, anonymised)
        _nan_row(root / "A2G" / side)
        if command == "eval":
            return cli_error(["eval", "-f", root, "-o", tmp_path / "e", "eval.show_queries=0"], capsys)
        return cli_error(["search", "-g", root / "A2G" / "gallery", "-q", root / "A2G" / "query", "-o", tmp_path / "s"],
                         capsys)
    return run


def _nan_matrix(which):
    def run(tmp_path, capsys):
        rng = np.random.default_rng(0)
        mats = {"q_g": rng.random((3, 5)), "q_q": rng.random((3, 3)), "g_g": rng.random((5, 5))}
        mats[which][0, 1] = np.nan
        with pytest.raises(FarreidError) as info:
            re_ranking(mats["q_g"], mats["q_q"], mats["g_g"], k1=2, k2=1)
        with pytest.raises(FarreidError):
            list(rerank_matrix_chunks(mats["q_g"], mats["q_q"], mats["g_g"], k1=2, k2=1))
        return str(info.value)
    return run


NAN_CASES = {
    "eval -f, labelled query": (_nan_features_cli(False, "query", "eval"), "NaN or infinite"),
    "eval -f, anonymised gallery": (_nan_features_cli(True, "gallery", "eval"), "NaN or infinite"),
    "search, streamed gallery": (_nan_features_cli(False, "gallery", "search"), "NaN or infinite"),
    "search, query features": (_nan_features_cli(False, "query", "search"), "NaN or infinite"),
    "re-ranking from matrices, q_g": (_nan_matrix("q_g"), "q_g contain NaN"),
    "re-ranking from matrices, g_g": (_nan_matrix("g_g"), "g_g contain NaN"),
}


@pytest.mark.parametrize("run, words", NAN_CASES.values(), ids=NAN_CASES.keys())
def test_non_finite_input_is_one_clear_error_everywhere(run, words, tmp_path, capsys):
    assert words in run(tmp_path, capsys)


def _unfinished_query(root):
    """A2G/query as an interrupted extraction leaves it: a shard, no manifest."""
    folder = root / "A2G" / "query"
    (folder / "features.safetensors").rename(folder / "features-00000.safetensors")


PARTIAL_CASES = {
    "unfinished extraction of one side": (_unfinished_query, "did not finish"),
    "one side missing": (lambda root: __import__("shutil").rmtree(root / "G2A" / "gallery"), "no gallery/"),
}


@pytest.mark.parametrize("damage, words", PARTIAL_CASES.values(), ids=PARTIAL_CASES.keys())
def test_a_partial_feature_tree_is_reported_not_skipped(damage, words, tmp_path, capsys):
    root = _saved(tmp_path)
    damage(root)
    line = cli_error(["eval", "-f", root, "-o", tmp_path / "e", "eval.show_queries=0"], capsys)
    assert words in line
    assert [p.name for p in load_protocols(root, ["A2A"])] == ["A2A"]  # leaving it out explicitly still works


HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "'=quoted"]


def _hostile_protocol():
    [p] = [p for p in challenge_protocols(nq=4, ng=5) if p.name == "A2G"]
    names = lambda fs, extra: [*extra, *fs.names[len(extra):]]  # noqa: E731
    q = FeatureSet(p.query.features, names(p.query, HOSTILE[:2]), p.query.pids, p.query.camids, p.query.platforms)
    g = FeatureSet(p.gallery.features, names(p.gallery, [n.replace(" ", "") for n in HOSTILE[2:]]), p.gallery.pids,
                   p.gallery.camids, p.gallery.platforms)
    return ProtocolData("A2G", q, g)


def _submission(tmp_path):
    data = _hostile_protocol()
    result = run_evaluation([data], tmp_path / "e", EvalConfig(show_queries=0, junk="tracklet"))
    path = tmp_path / "e" / "submission.csv"
    rows = read_submission(path)["A2G"]
    assert sorted(q for q, _ in rows) == sorted(data.query.names)  # read back exactly
    assert score_submission(path, [data])["A2G"].mAP == pytest.approx(result.protocols[0].rank.mAP)
    return path


def _ranking(tmp_path):
    data = _hostile_protocol()
    save_protocol(data, tmp_path / "f")
    from typer.testing import CliRunner

    from farreid.cli import app

    result = CliRunner().invoke(app, ["search", "-g", str(tmp_path / "f" / "A2G" / "gallery"), "-q",
                                      str(tmp_path / "f" / "A2G" / "query"), "-o", str(tmp_path / "s"), "--pictures", "0"])
    assert result.exit_code == 0, result.output
    return tmp_path / "s" / "ranking.csv"


@pytest.mark.parametrize("write", [_submission, _ranking], ids=["submission.csv (eval)", "ranking.csv (search)"])
def test_cells_a_spreadsheet_would_run_are_neutralised(write, tmp_path):
    path = write(tmp_path)
    cells = [cell for row in csv.reader(path.open()) for cell in row]
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    assert any(cell.startswith("'=HYPERLINK") for cell in cells)
    assert "A2G_q0002" in cells  # ordinary names are written as they are
