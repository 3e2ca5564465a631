"""evaluate_checkpoint and `farreid eval --checkpoint`: extraction + the evaluation pipeline from a checkpoint."""

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from _inference_data import one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from farreid.config import load_config
from farreid.config.schema import EvalConfig
from farreid.data import build_dataset
from farreid.errors import FarreidError
from farreid.eval import evaluate_protocol, load_protocols
from farreid.inference import ReIDModel, evaluate_checkpoint
from farreid.inference.loading import checkpoint_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


def shown(cfg, queries):
    """`cfg` with `eval.show_queries` set."""
    return replace(cfg, eval=replace(cfg.eval, show_queries=queries))


def test_evaluate_checkpoint_writes_the_whole_evaluation(trained, tmp_path):
    model = ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="fp32")
    result = evaluate_checkpoint(model, shown(model.cfg, 1), tmp_path / "eval", title="tiny")
    assert [p.name for p in result.protocols] == ["A2G", "G2A", "A2A"]
    out = tmp_path / "eval"
    for name in ("metrics.json", "summary.txt", "submission.csv", "report.html"):
        assert (out / name).is_file(), name
    assert len(list((out / "pictures").rglob("*.png"))) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocols"]["A2G"]["num_query"] == 12 and not metrics["settings"]["rerank"]

    # The numbers are those of the saved features, which are the model's embeddings of the protocol's tracklets.
    saved = {p.name: p for p in load_protocols(out / "features")}
    a2g = build_dataset("detreidx", trained.data, protocol="A2G", load_train=False).protocols["A2G"]
    np.testing.assert_allclose(saved["A2G"].gallery.features.numpy(), model.embed_tracklets(a2g.gallery), atol=1e-6)
    assert saved["A2G"].gallery.names == [t.name for t in a2g.gallery]
    for p in result.protocols:
        again = evaluate_protocol(saved[p.name], EvalConfig(max_rank=50))
        assert again.rank.mAP == pytest.approx(p.rank.mAP, abs=1e-12)


def test_cli_eval_checkpoint_takes_the_checkpoint_config_then_overrides(trained, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, [
        "eval", "--checkpoint", str(trained.run), "-o", str(out),
        "data.protocol=A2G", "eval.flip=false", "eval.show_queries=0", "eval.rerank.enabled=true", "eval.rerank.k1=4",
        "eval.rerank.k2=2",
    ])
    assert result.exit_code == 0, result.output
    assert "A2G" in result.output and "G2A" not in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["protocols"]) == ["A2G"] and metrics["settings"]["rerank"]["k1"] == 4
    header = (out / "features" / "A2G" / "query" / "features.safetensors").read_bytes()[:2000]
    assert b'"flip":"false"' in header


def test_config_layers_and_early_errors(trained, tmp_path):
    cfg = checkpoint_config(trained.checkpoint)
    assert cfg.device == "auto" and cfg.model.backbone == "test" and cfg.data.root == str(trained.data)
    layered = load_config(None, ["eval.max_rank=5"], base=cfg)
    assert layered.eval.max_rank == 5 and layered.model.pbp.key == "platform"
    cfg.model.image_size = [128, 32]
    with pytest.raises(FarreidError, match="model takes 64x32 frames but model.image_size asks for 128x32"):
        evaluate_checkpoint(trained.checkpoint, cfg, tmp_path)
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(trained.checkpoint), "--features", str(tmp_path)])
    assert result.exit_code != 0
