import csv

import numpy as np
import pytest

from _eval_data import challenge_protocols
from farreid.config.schema import EvalConfig
from farreid.errors import FarreidError
from farreid.eval import evaluate_protocols, read_submission, score_submission, write_submission

CASES = ["Case 1: Aerial to Ground", "Case 2: Ground to Aerial", "Case 3: Aerial to Aerial"]


def written(tmp_path, protocols):
    result = evaluate_protocols(protocols, keep_ranking=True)
    path = tmp_path / "submission.csv"
    rows = write_submission(path, {p.name: (d, p.ranking) for p, d in zip(result.protocols, protocols)})
    return path, rows, result


def test_csv_has_the_challenge_format(tmp_path):
    protocols = challenge_protocols(seed=0, nq=5, ng=7)
    path, rows, result = written(tmp_path, protocols)
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["row_id", "case", "query_tracklet", "ranked_gallery_tracklets"]
    body = table[1:]
    assert rows == len(body) == 15
    assert [int(r[0]) for r in body] == list(range(1, 16))
    assert [r[1] for r in body] == [c for c in CASES for _ in range(5)]
    for k, (data, res) in enumerate(zip(protocols, result.protocols)):
        part = body[5 * k : 5 * k + 5]
        expected_order = sorted(range(5), key=lambda i: (data.query.pids[i], data.query.names[i]))
        assert [r[2] for r in part] == [data.query.names[i] for i in expected_order]
        for r, i in zip(part, expected_order):
            ranked = r[3].split(" ")
            assert sorted(ranked) == sorted(data.gallery.names)  # every gallery tracklet, once
            assert ranked == [data.gallery.names[j] for j in res.ranking[i]]


def test_csv_is_written_for_anonymised_labels(tmp_path):
    protocols = challenge_protocols(seed=1, nq=4, ng=6, anonymised=True)
    path, rows, _ = written(tmp_path, protocols)
    parsed = read_submission(path)
    assert rows == 12 and list(parsed) == ["A2G", "G2A", "A2A"]
    assert [q for q, _ in parsed["A2G"]] == sorted(protocols[0].query.names)  # pid -1 everywhere: by name


def test_scorer_reproduces_the_metrics(tmp_path):
    protocols = challenge_protocols(seed=2, nq=8, ng=30)
    path, _, _ = written(tmp_path, protocols)
    scores = score_submission(path, protocols, EvalConfig(junk="tracklet"))
    direct = evaluate_protocols(protocols, EvalConfig(junk="tracklet"))
    for p in direct.protocols:
        assert scores[p.name].mAP == pytest.approx(p.rank.mAP, abs=1e-12)
        assert scores[p.name].cmc.tolist() == p.rank.cmc.tolist()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows[:-1], "exactly once"),
        (lambda rows: rows[:1] + [rows[1][:3] + [rows[1][3].rsplit(" ", 1)[0]]] + rows[2:], "rank each"),
        (lambda rows: rows[:1] + [rows[1][:1] + ["Case 9"] + rows[1][2:]] + rows[2:], "unknown case"),
        (lambda rows: [["id", "case", "query", "gallery"]] + rows[1:], "header"),
    ],
)
def test_scorer_rejects_malformed_files(tmp_path, edit, message):
    protocols = challenge_protocols(seed=3, nq=3, ng=5)
    path, _, _ = written(tmp_path, protocols)
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(edit(rows))
    with pytest.raises(FarreidError, match=message):
        score_submission(path, protocols)


def test_writer_refuses_unknown_cases_and_spaced_names(tmp_path):
    p = challenge_protocols(nq=2, ng=3)[0]
    with pytest.raises(FarreidError, match="no case"):
        write_submission(tmp_path / "x.csv", {"MARS": (p, np.zeros((2, 3), int))})
    p.query.names[0] = "query names may have spaces"
    write_submission(tmp_path / "x.csv", {"A2G": (p, np.tile(np.arange(3), (2, 1)))})
    assert "query names may have spaces" in [q for q, _ in read_submission(tmp_path / "x.csv")["A2G"]]
    p.gallery.names[0] = "has space"
    with pytest.raises(FarreidError, match="whitespace"):
        write_submission(tmp_path / "x.csv", {"A2G": (p, np.tile(np.arange(3), (2, 1)))})
