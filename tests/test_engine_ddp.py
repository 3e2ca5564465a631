"""Two CPU processes (torchrun, gloo) with b tracklets each train the same parameters as one process with 2b.

The guarantee: the loss is evaluated on the global batch gathered from all processes (with gradients), so the
gradients equal those of one process holding the whole batch; batch norm is the exception on the CPU (no
SyncBatchNorm there), so the toy model here has no BNNeck.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import engine_toys
from engine_toys import one_thread, toy_config, toy_parts  # noqa: F401  (fixture)
from farreid import __file__ as farreid_init
from farreid.engine import load_checkpoint, train
from farreid.utils.log import read_metrics

OVERRIDES = ("data.val_ids=4", "train.stage2.accum_steps=2", "train.stage2.grad_clip=1.0", "train.eval_every=1")
# the centre loss learns state outside the DDP-wrapped model (its gradients are averaged by hand)
CENTRE = ("train.stage2.loss.centre_weight=0.5", "train.stage2.loss.centre_lr_mult=5")


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("losses", [(), CENTRE], ids=["default-losses", "centre-loss"])
def test_two_processes_train_like_one_with_the_whole_batch(tmp_path, losses):
    src = str(Path(farreid_init).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(Path(engine_toys.__file__).parent)]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # standalone: a free port
           engine_toys.__file__, str(tmp_path / "ddp"), *OVERRIDES, *losses]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    cfg = toy_config(tmp_path / "single", *OVERRIDES, *losses)
    single = train(cfg, parts=toy_parts(cfg, val_ids=cfg.data.val_ids, bnneck=False), console=False)

    run = tmp_path / "ddp" / "toy"
    ddp_final = load_checkpoint(run / "checkpoints" / single.last_checkpoint.name)
    one_final = load_checkpoint(single.last_checkpoint)
    assert ddp_final["world_size"] == 2 and len(ddp_final["rng"]) == 2
    for key, value in one_final["model"].items():
        torch.testing.assert_close(ddp_final["model"][key], value, rtol=1e-4, atol=1e-6, msg=key)
    assert ("criterion" in one_final) == bool(losses) and ddp_final.get("criterion", {}).keys() == one_final.get("criterion", {}).keys()
    for key, value in one_final.get("criterion", {}).items():
        torch.testing.assert_close(ddp_final["criterion"][key], value, rtol=1e-4, atol=1e-6, msg=key)
    ddp_val = [m for m in read_metrics(run / "log.jsonl") if m["event"] == "validation"]
    assert [round(m["mAP"], 4) for m in ddp_val] == [round(v["mAP"], 4) for v in single.validation]
    # rank 0 alone writes: one JSONL log whose step records come from one process
    steps = [m["step"] for m in read_metrics(run / "log.jsonl") if m["event"] == "step" and m["stage"] == "stage2"]
    assert steps == sorted(set(steps))
