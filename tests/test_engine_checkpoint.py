import random

import numpy as np
import pytest
import torch

from farreid.config import config_to_dict, load_config
from farreid.engine.checkpoint import (
    CheckpointError,
    CheckpointManager,
    capture_rng,
    check_config,
    config_differences,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_states_round_trip_through_a_safe_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.randn()  # leaves a cached gaussian in the numpy state
    save_checkpoint({"rng": capture_rng()}, tmp_path / "c.pt")
    expected = _draws()
    _draws()
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])  # read with weights_only=True
    assert _draws() == expected


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"x": torch.ones(2)}, path)

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({"x": torch.zeros(2)}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_unreadable_or_foreign_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a farreid training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_config_check_names_the_differing_keys_and_ignores_runtime_ones(tmp_path):
    saved = config_to_dict(load_config("demo_tiny"))
    same_work = config_to_dict(load_config("demo_tiny", ["data.workers=4", "device=cpu", "eval.flip=false", "name=x"]))
    check_config({"config": saved}, same_work, "c.pt")
    changed = config_to_dict(load_config("demo_tiny", ["train.stage2.lr=0.5", "model.pooling=mean"]))
    with pytest.raises(CheckpointError) as info:
        check_config({"config": saved}, changed, "c.pt")
    msg = str(info.value)
    lr = saved["train"]["stage2"]["lr"]
    assert "c.pt" in msg and f"train.stage2.lr: {lr} -> 0.5" in msg and "model.pooling: 'attention' -> 'mean'" in msg
    assert config_differences(saved, changed, only=("model",)) == ["model.pooling: 'attention' -> 'mean'"]


def test_manager_keeps_the_last_k_and_finds_the_resume_point(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (3, 6):
        manager.save_step({"stage": "stage1", "step": step})
    assert manager.latest() == tmp_path / "stage1-step0000006.pt"
    manager.save({"stage": "stage1"}, manager.stage1_path)
    assert manager.latest() == manager.stage1_path  # stage 1 finished after its last step checkpoint
    assert manager.latest(["stage2"]) is None  # a stage-2-only run reads stage1.pt as input, not as resume point
    for step in (4, 8, 12):
        manager.save_step({"stage": "stage2", "step": step})
    assert [p.name for p in manager.step_checkpoints()] == ["stage2-step0000008.pt", "stage2-step0000012.pt"]
    assert manager.latest() == tmp_path / "stage2-step0000012.pt" and manager.stage1_path.is_file()
    silent = CheckpointManager(tmp_path / "other", keep_last=1, enabled=False)
    assert silent.save_step({"stage": "stage2", "step": 1}) is None and not (tmp_path / "other").exists()
