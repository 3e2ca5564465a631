import math

import pytest
import torch
from torch import nn

from engine_toys import ToyReID
from farreid.config.schema import LossConfig
from farreid.engine.losses import ReIDCriterion
from farreid.engine.loop import Stepper
from farreid.engine.optim import WarmupCosine, build_param_groups, trainable_parameters
from farreid.engine.stage2 import stage2_param_groups


def _groups_by_name(groups):
    return {g["name"]: g for g in groups}


def test_stage2_groups_split_biases_and_scale_the_backbone_tail():
    model = ToyReID(num_classes=5)
    groups = _groups_by_name(stage2_param_groups(
        model, lr=1e-3, weight_decay=5e-4, bias_lr_factor=2.0, weight_decay_bias=1e-4, backbone_lr_mult=0.1
    ))
    assert set(groups) == {"new", "new.bias", "backbone_tail", "backbone_tail.bias"}
    assert groups["new"]["lr"] == 1e-3 and groups["new"]["weight_decay"] == 5e-4
    assert groups["new.bias"]["lr"] == 2e-3 and groups["new.bias"]["weight_decay"] == 1e-4
    assert math.isclose(groups["backbone_tail"]["lr"], 1e-4) and math.isclose(groups["backbone_tail.bias"]["lr"], 2e-4)
    assert groups["backbone_tail"]["params"] == [model.tail.weight]
    in_groups = {id(p) for p in trainable_parameters(groups.values())}
    # the frozen BNNeck bias stays out; everything outside the groups is frozen (text side, backbone, prompts of stage 1)
    assert id(model.neck.bias) not in in_groups and id(model.neck.weight) in in_groups
    assert not model.prompt_learner.ctx.requires_grad and not model.backbone.weight.requires_grad
    assert all(p.requires_grad for p in trainable_parameters(groups.values()))


def test_the_criterion_joins_the_stage2_groups_with_its_learned_state():
    model = ToyReID(num_classes=5)
    kw = dict(lr=1e-3, weight_decay=5e-4, bias_lr_factor=2.0, weight_decay_bias=1e-4, backbone_lr_mult=0.1)
    plain = stage2_param_groups(model, **kw, criterion=ReIDCriterion(LossConfig()))
    assert [g["name"] for g in plain] == [g["name"] for g in stage2_param_groups(model, **kw)]
    criterion = ReIDCriterion(LossConfig(centre_weight=1e-3, centre_lr_mult=10.0), num_classes=5,
                              feature_dims=model.triplet_feature_dims)
    groups = _groups_by_name(stage2_param_groups(model, **kw, criterion=criterion))
    assert set(groups) == {"new", "new.bias", "backbone_tail", "backbone_tail.bias", "loss.centre"}
    assert groups["loss.centre"]["params"] == list(criterion.parameters())
    assert math.isclose(groups["loss.centre"]["lr"], 1e-2) and groups["loss.centre"]["weight_decay"] == 0.0


def test_param_groups_accept_named_pairs_and_reject_duplicates():
    lin = nn.Linear(2, 2)
    groups = build_param_groups(lin, {"new": [("weight", lin.weight), ("bias", lin.bias)]}, 0.1, 0.0, 3.0)
    assert [g["name"] for g in groups] == ["new", "new.bias"] and math.isclose(groups[1]["lr"], 0.3)
    with pytest.raises(ValueError, match="more than one"):
        build_param_groups(lin, {"a": [lin.weight], "b": [lin.weight]}, 0.1, 0.0)
    with pytest.raises(ValueError, match="does not have"):
        build_param_groups(lin, {"a": [lin.weight]}, 0.1, 0.0, lr_mults={"backbone_tail": 0.1})


def test_warmup_cosine_curve_and_resume():
    opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0},
                           {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}])
    sched = WarmupCosine(opt, total_steps=10, warmup_steps=2, warmup_factor=0.1, min_lr=0.01)
    seen = [sched.get_last_lr()]
    for _ in range(10):
        sched.step()
        seen.append(sched.get_last_lr())
    assert math.isclose(seen[0][0], 0.1) and math.isclose(seen[1][0], 0.55)  # linear warmup from 0.1 x lr
    assert math.isclose(seen[2][0], 1.0) and math.isclose(seen[2][1], 0.1)  # peak after warmup, groups keep their ratio
    assert math.isclose(seen[6][0], 0.01 + 0.99 * 0.5)  # cosine half-way
    assert math.isclose(seen[10][0], 0.01) and math.isclose(seen[10][1], 0.001)  # min_lr scaled per group
    assert all(a[0] >= b[0] for a, b in zip(seen[2:], seen[3:]))
    fresh = WarmupCosine(opt, total_steps=10, warmup_steps=2, warmup_factor=0.1, min_lr=0.01)
    fresh.load_state_dict({"step_count": 6})
    assert fresh.get_last_lr() == seen[6]
    with pytest.raises(ValueError):
        WarmupCosine(opt, total_steps=5, warmup_steps=5)


def _regression(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    return model, x, y


def _stepper(model, accum=1, clip=0.0):
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = WarmupCosine(opt, total_steps=100)
    return Stepper(opt, sched, torch.amp.GradScaler("cpu", enabled=False), list(model.parameters()),
                   accum_steps=accum, grad_clip=clip)


def test_gradient_accumulation_equals_the_large_batch():
    big, x, y = _regression()
    small, _, _ = _regression()
    s_big, s_small = _stepper(big), _stepper(small, accum=2)
    for _ in range(3):
        s_big.backward(nn.functional.mse_loss(big(x), y))
        s_big.step()
        for half in (slice(0, 4), slice(4, 8)):
            s_small.backward(nn.functional.mse_loss(small(x[half]), y[half]))
        s_small.step()
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_gradient_clipping_bounds_the_update_norm():
    model, x, y = _regression()
    stepper = _stepper(model, clip=1e-3)
    stepper.backward(1e3 * nn.functional.mse_loss(model(x), y))
    captured = {}
    stepper.before_step = lambda: captured.update(norm=torch.norm(torch.stack([p.grad.norm() for p in model.parameters()])))
    norm = stepper.step()
    assert norm is not None and math.isclose(norm, float(captured["norm"]), rel_tol=1e-5) and norm > 1e-3


def test_stepper_state_round_trip():
    model, x, y = _regression()
    stepper = _stepper(model)
    stepper.backward(nn.functional.mse_loss(model(x), y))
    stepper.step()
    state = stepper.state_dict()
    other_model, _, _ = _regression(seed=1)
    other = _stepper(other_model)
    other.load_state_dict(state)
    assert other.scheduler.step_count == 1
    assert torch.equal(other.optimizer.state_dict()["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])


def test_loss_scaling_path_matches_unscaled_training():
    """The fp16 path (GradScaler: scale, unscale before clipping, step) gives the unscaled result."""
    plain, x, y = _regression()
    scaled, _, _ = _regression()
    s_plain = _stepper(plain, clip=0.5)
    s_scaled = _stepper(scaled, clip=0.5)
    s_scaled.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    for _ in range(3):
        for model, stepper in ((plain, s_plain), (scaled, s_scaled)):
            stepper.backward(nn.functional.mse_loss(model(x), y))
            stepper.step()
    assert s_scaled.scaler.get_scale() == 2.0**10 and "scale" in s_scaled.state_dict()["scaler"]
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_groups_given_as_a_list_of_dicts_with_their_own_multiplier():
    """The form farreid.models.FarReID returns: [{"name", "params", "param_names", "lr_mult"}]."""
    model = ToyReID(num_classes=5)
    as_mapping = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    model.parameter_groups = lambda: [
        {"name": name, "params": params, "param_names": [names[id(p)] for p in params], "lr_mult": 0.5 if name == "backbone_tail" else 1.0}
        for name, params in as_mapping.items()
    ]
    groups = _groups_by_name(stage2_param_groups(
        model, lr=1e-3, weight_decay=5e-4, bias_lr_factor=2.0, weight_decay_bias=1e-4, backbone_lr_mult=0.1
    ))
    assert math.isclose(groups["backbone_tail"]["lr"], 5e-4) and math.isclose(groups["backbone_tail.bias"]["lr"], 1e-3)
    assert math.isclose(groups["new.bias"]["lr"], 2e-3)
