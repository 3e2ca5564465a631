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


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_the_umask(tmp_path, umask):
    """Temporary files are created 0600; what is renamed into place has the mode the user's umask gives."""
    before = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        with atomic_open(tmp_path / "b.bin", "wb") as fh:
            fh.write(b"1")
        torch_path = tmp_path / "c.pt"
        from farreid.utils.io import atomic_torch_save

        atomic_torch_save({"w": torch.zeros(1)}, torch_path)
    finally:
        os.umask(before)
    for name in ("a.json", "b.bin", "c.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_files_are_strict(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"mAP": float("nan"), "cmc": [1.0, float("inf")], "n": 3})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"mAP": None, "cmc": [1.0, None], "n": 3}
