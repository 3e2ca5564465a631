"""Cross-dataset evaluation: a model trained on one generated miniature (DetReIDX layout) evaluated on others
(AG-VPReID, DukeMTMC-VideoReID layouts) with `farreid eval --checkpoint RUN data.dataset=... data.root=...`;
its challenge CSV scored by `farreid score` against the dataset folder gives the same numbers."""

import json

import pytest
from typer.testing import CliRunner

from _inference_data import one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from test_data_benchmarks import make_agvpreid, make_dukevideo

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


def test_eval_on_another_dataset_then_score_its_csv(trained, tmp_path):
    root = make_agvpreid(tmp_path / "agvpreid")
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--checkpoint", str(trained.run), "-o", str(out), "data.dataset=agvpreid",
                                 f"data.root={root}", "eval.show_queries=0"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["protocols"]) == ["A2G", "G2A"] and metrics["protocols"]["A2G"]["num_gallery"] == 3
    scored = runner.invoke(app, ["score", "-s", str(out / "submission.csv"), "-l", str(root), "-d", "agvpreid",
                                 "-o", str(tmp_path / "score")])
    assert scored.exit_code == 0, scored.output
    again = json.loads((tmp_path / "score" / "metrics.json").read_text())
    for name in ("A2G", "G2A"):
        for key in ("mAP", "R1", "mINP", "mAP@10"):
            assert again["protocols"][name][key] == pytest.approx(metrics["protocols"][name][key], abs=1e-12)


def test_eval_on_a_ground_video_dataset(trained, tmp_path):
    root = make_dukevideo(tmp_path / "duke")
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--checkpoint", str(trained.checkpoint), "-o", str(out),
                                 "data.dataset=dukevideo", f"data.root={root}", "eval.show_queries=1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["protocols"]) == ["test"] and metrics["protocols"]["test"]["num_query"] == 2
    assert metrics["protocols"]["test"]["num_valid"] == 2 and 0 < metrics["protocols"]["test"]["mAP"] <= 1
    assert not (out / "submission.csv").exists()  # not a challenge case
