"""A checkpoint chooses nothing: outputs go to the run folder named on the command line or relative to the
current directory, never to the `out_dir` stored in a checkpoint someone hands us."""

import shutil
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from _inference_data import one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from farreid.inference import ReIDModel, evaluate_checkpoint
from farreid.inference.loading import checkpoint_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.fixture
def hostile(trained, tmp_path):
    """The tiny checkpoint as a stranger might send it: its stored out_dir points at someone else's folder."""
    state = torch.load(trained.checkpoint, map_location="cpu", weights_only=True)
    victim = tmp_path / "victim"
    state["config"]["out_dir"] = str(victim)
    state["config"]["name"] = "planted"
    run = tmp_path / "downloads" / "their_run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save(state, run / "checkpoints" / "best.pt")
    shutil.copy(run / "checkpoints" / "best.pt", tmp_path / "downloads" / "downloaded.pt")
    return tmp_path, victim, run


def _cli(checkpoint):
    def run():
        result = CliRunner().invoke(app, ["eval", "--checkpoint", str(checkpoint), "eval.show_queries=0"])
        assert result.exit_code == 0, result.output
    return run


def _api(checkpoint):
    def run():
        model = ReIDModel.from_checkpoint(checkpoint, device="cpu", precision="fp32")
        evaluate_checkpoint(model, replace(model.cfg, eval=replace(model.cfg.eval, show_queries=0)))
    return run


CASES = {
    "eval --checkpoint FILE (not in a run folder)": (lambda t, r: _cli(t / "downloads" / "downloaded.pt"),
                                                     lambda t, r: t / "work" / "runs" / "planted" / "results" / "eval"),
    "eval --checkpoint RUN": (lambda t, r: _cli(r), lambda t, r: r / "results" / "eval"),
    "eval --checkpoint RUN/checkpoints/best.pt": (lambda t, r: _cli(r / "checkpoints" / "best.pt"),
                                                  lambda t, r: r / "results" / "eval"),
    "evaluate_checkpoint(ReIDModel)": (lambda t, r: _api(r / "checkpoints" / "best.pt"), lambda t, r: r / "results" / "eval"),
}


@pytest.mark.parametrize("command, expected", CASES.values(), ids=CASES.keys())
def test_outputs_never_go_where_the_checkpoint_says(command, expected, hostile, monkeypatch):
    tmp_path, victim, run = hostile
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    command(tmp_path, run)()
    assert not victim.exists()
    assert (expected(tmp_path, run) / "metrics.json").is_file()


def test_the_stored_out_dir_is_dropped_when_the_config_is_read(hostile):
    tmp_path, victim, run = hostile
    assert checkpoint_config(run).out_dir == "runs"
    assert ReIDModel.from_checkpoint(run, device="cpu").cfg.out_dir == "runs"
