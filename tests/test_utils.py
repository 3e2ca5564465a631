import json
import os

import pytest
import torch

from farreid.config import load_config
from farreid.utils.device import Precision, resolve_device, resolve_precision
from farreid.utils.io import atomic_open, atomic_write_json, safe_join
from farreid.utils.log import get_logger, log_metrics, read_metrics, setup_logging
from farreid.utils.run import create_run, seed_everything


def test_precision_helper_cpu():
    p = Precision.create("cpu", "fp32")
    assert p.device.type == "cpu" and not p.needs_grad_scaler
    with p.autocast():
        assert torch.ones(2).dtype == torch.float32
    bf = Precision.create("cpu", "bf16")
    with bf.autocast():
        y = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert y.dtype == torch.bfloat16
    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")
    with pytest.raises(RuntimeError, match="fp16 is supported on CUDA only"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_missing_cuda_is_clear():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_atomic_open_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(ZeroDivisionError):
        with atomic_open(target) as fh:
            fh.write("half")
            1 / 0
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left behind


def test_safe_join_refuses_escape(tmp_path):
    assert safe_join(tmp_path, "a", "b.png") == (tmp_path / "a" / "b.png").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError, match="outside"):
            safe_join(tmp_path, bad)


def test_run_directory_and_jsonl_log(tmp_path):
    cfg = load_config("demo_tiny", [f"out_dir={tmp_path}", "name=exp1"])
    run = create_run(cfg, console=False)
    assert run.root == (tmp_path / "exp1").resolve()
    assert load_config(run.config_file) == cfg
    meta = json.loads(run.meta_file.read_text())
    assert meta["versions"]["torch"].startswith("2.13") and "git_revision" in meta
    log_metrics(get_logger("train"), "step", loss=1.5, lr=0.001, step=3)
    records = read_metrics(run.log_file)
    assert records[-1]["loss"] == 1.5 and records[-1]["step"] == 3 and records[-1]["event"] == "step"
    setup_logging(None, console=False)  # detach the file handler


def test_seed_everything_is_deterministic():
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
