"""Fidelity and precision: every bias vector (by name pattern, `in_proj_bias` included) trains in the bias group
as the reference optimiser has it; a forced bf16/fp16 on a CPU without native bf16 warns once."""

import re
import warnings

import pytest
import torch

from farreid.config import load_config
from farreid.engine.stage2 import stage2_param_groups
from farreid.models import FarReID
from farreid.utils import device as dev

BIAS = re.compile(r"(^|\.)[^.]*bias[^.]*$")  # the leaf name holds "bias": bias, in_proj_bias, bias_k, ...


def test_every_bias_by_name_pattern_is_in_the_bias_group():
    cfg = load_config("demo_tiny")
    model = FarReID(cfg.model, num_classes=6, num_keys=2)
    groups = stage2_param_groups(model, lr=1e-4, weight_decay=2.5e-4, bias_lr_factor=2.0, weight_decay_bias=1e-4,
                                 backbone_lr_mult=0.1)
    group_of = {id(p): g for g in groups for p in g["params"]}
    lr = {g["name"]: g["lr"] for g in groups}
    names = {n: p for n, p in model.named_parameters() if id(p) in group_of}
    in_proj = [n for n in names if n.endswith("in_proj_bias")]
    assert len([n for n in in_proj if n.startswith("adapters.")]) == len(model.adapters)  # one temporal adapter a block
    assert in_proj, "the temporal adapters' and fine-tuned blocks' attention biases are trained"
    for name, p in names.items():
        g = group_of[id(p)]
        if BIAS.search(name):
            assert g["name"].endswith(".bias"), name
            assert g["lr"] == pytest.approx(2 * lr[g["name"][: -len(".bias")]]) and g["weight_decay"] == 1e-4, name
        else:
            assert not g["name"].endswith(".bias"), name
            assert g["weight_decay"] == 2.5e-4, name


@pytest.fixture
def avx2_only(monkeypatch):
    monkeypatch.setattr(dev, "_warned_slow_precision", False)
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: False)


@pytest.mark.parametrize("entry", ["Precision.create", "resolve_precision (train)"])
def test_forced_bf16_on_a_cpu_without_native_bf16_warns_once(entry, avx2_only):
    call = {"Precision.create": lambda: dev.Precision.create("cpu", "bf16"),
            "resolve_precision (train)": lambda: dev.resolve_precision("bf16", torch.device("cpu"))}[entry]
    with pytest.warns(dev.SlowPrecisionWarning, match="AVX-512-BF16.*23 s in fp32"):
        call()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call()  # once a process
        assert dev.resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_fast_bf16_cpus_and_fp32_do_not_warn(monkeypatch, tmp_path):
    monkeypatch.setattr(dev, "_warned_slow_precision", False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert {"avx512_bf16", "avx2"} <= dev.cpu_flags.__wrapped__(info)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dev.resolve_precision("fp32", torch.device("cpu"))
        monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: True)
        dev.resolve_precision("bf16", torch.device("cpu"))
