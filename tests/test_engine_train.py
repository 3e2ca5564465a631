import json
import math
from dataclasses import replace

import pytest
import torch

from engine_toys import one_thread, toy_config, toy_parts  # noqa: F401  (fixture)
from farreid.cli import main
from farreid.config import ConfigError, load_config
from farreid.config.schema import EvalConfig
from farreid.engine import CheckpointError, DivergedError, load_checkpoint, train, validate
from farreid.engine.checks import check_train_config
from farreid.engine.distributed import DistContext
from farreid.engine.validate import embed_dataset, ranking_metrics
from farreid.errors import FarreidError
from farreid.utils.device import Precision
from farreid.utils.log import read_metrics

CPU = Precision(torch.device("cpu"), "fp32")
pytestmark = pytest.mark.usefixtures("one_thread")


def _records(run_dir, kind, stage=None):
    return [m for m in read_metrics(run_dir / "log.jsonl") if m["event"] == kind and m.get("stage", stage) == stage]


def _chance_map(parts, trials=20):
    kw = dict(precision=CPU, ctx=DistContext())
    q = embed_dataset(parts.model, parts.val_query, EvalConfig(batch_size=16, flip=False), **kw)
    g = embed_dataset(parts.model, parts.val_gallery, EvalConfig(batch_size=16, flip=False), **kw)
    gen = torch.Generator().manual_seed(0)
    rand = lambda f: torch.randn(f.shape, generator=gen)  # noqa: E731
    return sum(ranking_metrics((rand(q[0]), q[1], q[2]), (rand(g[0]), g[1], g[2]))["mAP"] for _ in range(trials)) / trials


def test_tiny_two_stage_training_learns(tmp_path):
    cfg = toy_config(tmp_path, "data.val_ids=8", "data.tracklets_per_id=4", "train.stage1.epochs=3",
                     "train.stage2.epochs=12", "train.stage2.lr=0.05", "train.eval_every=4", "train.log_every=5")
    parts = toy_parts(cfg, ids=32, val_ids=8, per_id=6, noise=1.0, shift=2.0)
    chance = _chance_map(parts)
    before = validate(parts.model, parts.val_query, parts.val_gallery, replace(cfg.eval, batch_size=16),
                      precision=CPU, ctx=DistContext())
    result = train(cfg, parts=parts, console=False)

    assert result.completed and result.stages == ["stage1", "stage2"]
    for stage in ("stage1", "stage2"):
        losses = [m["loss"] for m in _records(result.run_dir, "epoch", stage)]
        assert losses[-1] < losses[0], (stage, losses)
    maps = [m["mAP"] for m in _records(result.run_dir, "validation", "stage2")]
    assert [m["epoch"] for m in result.validation] == [4, 8, 12]
    assert result.best["mAP"] == max(maps) > before["mAP"] + 0.15 and max(maps) > chance + 0.3, (chance, before, maps)

    steps = _records(result.run_dir, "step", "stage2")
    assert steps and {"lr", "loss", "id", "triplet", "i2t", "supcon_i2t", "supcon_t2i", "tracklets_per_s"} <= set(steps[0])
    ckpts = result.run_dir / "checkpoints"
    # 6 steps an epoch, a checkpoint every epoch, the last train.keep_last = 2 kept
    assert sorted(p.name for p in ckpts.glob("stage*-step*.pt")) == ["stage2-step0000066.pt", "stage2-step0000072.pt"]
    assert (ckpts / "stage1.pt").is_file() and result.best_checkpoint == ckpts / "best.pt"
    assert load_checkpoint(ckpts / "best.pt")["loop"]["best_epoch"] == result.best["epoch"]
    summary = json.loads((result.run_dir / "results" / "train_summary.json").read_text())
    assert summary["completed"] and summary["best"]["mAP"] == result.best["mAP"]
    assert (result.run_dir / "config.yaml").is_file()


def test_bf16_autocast_training_runs(tmp_path):
    cfg = toy_config(tmp_path, "precision=bf16", "train.stages=[stage2]", "train.stage2.epochs=2",
                     "train.stage2.warmup_epochs=0", "train.stage2.loss.i2t_weight=0",
                     "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0")
    result = train(cfg, parts=toy_parts(cfg), console=False)
    assert result.completed and torch.isfinite(torch.tensor(result.final_metrics["loss"]))
    assert "i2t" not in result.final_metrics  # text terms off: stage 2 runs without a stage-1 result


def test_a_loss_that_is_not_finite_stops_training_with_a_clear_error(tmp_path):
    cfg = toy_config(tmp_path, "train.stages=[stage2]", "train.stage2.loss.i2t_weight=0",
                     "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0", "train.log_every=1")
    parts = toy_parts(cfg)
    parts.train_loader.data.clips[:] = float("nan")
    with pytest.raises(DivergedError, match="stage2: the loss became nan by step 1; lower train.stage2.lr"):
        train(cfg, parts=parts, console=False)


RESUME_OVERRIDES = ("data.ids_per_batch=2", "train.stage2.accum_steps=2", "train.stage2.grad_clip=1.0", "train.checkpoint_every=2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: a whole run, with dropout (RNG), BNNeck (buffers), accumulation and clipping."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = toy_config(tmp_path_factory.mktemp("full"), *RESUME_OVERRIDES)
    result = train(cfg, parts=toy_parts(cfg, dropout=0.2), console=False)
    torch.set_num_threads(before)
    return load_checkpoint(result.last_checkpoint)


@pytest.mark.parametrize("stop_at", [("stage1", 3), ("stage2", 4), ("stage2", 3)], ids=["stage1", "stage2-mid-epoch", "stage2-epoch-end"])
def test_stop_and_resume_ends_with_identical_parameters(tmp_path, uninterrupted, stop_at):
    cfg = toy_config(tmp_path, *RESUME_OVERRIDES)
    first = train(cfg, parts=toy_parts(cfg, dropout=0.2), stop_at=stop_at, console=False)
    assert not first.completed
    stopped = load_checkpoint(first.last_checkpoint)
    assert (stopped["stage"], stopped["loop"]["step"]) == stop_at
    # a new process would rebuild everything from the config: fresh parts, then --resume auto
    resumed = train(cfg, resume="auto", parts=toy_parts(cfg, dropout=0.2), console=False)
    assert resumed.completed
    final = load_checkpoint(resumed.last_checkpoint)
    assert final["loop"]["step"] == uninterrupted["loop"]["step"]
    for key, value in uninterrupted["model"].items():
        assert torch.equal(final["model"][key], value), key
    assert final["optimizer"]["state"].keys() == uninterrupted["optimizer"]["state"].keys()
    assert final["loader"] == uninterrupted["loader"] and final["scheduler"] == uninterrupted["scheduler"]


def test_stage2_from_a_stage1_result_matches_the_two_stage_run(tmp_path, uninterrupted):
    cfg1 = toy_config(tmp_path, *RESUME_OVERRIDES, "train.stages=[stage1]", "name=prompts")
    first = train(cfg1, parts=toy_parts(cfg1, dropout=0.2), console=False)
    assert first.last_checkpoint.name == "stage1.pt"
    cfg2 = toy_config(tmp_path, *RESUME_OVERRIDES, "train.stages=[stage2]", f"train.stage1_checkpoint={first.last_checkpoint}")
    second = train(cfg2, parts=toy_parts(cfg2, dropout=0.2), console=False)
    final = load_checkpoint(second.last_checkpoint)
    for key, value in uninterrupted["model"].items():
        assert torch.equal(final["model"][key], value), key
    # the prompt learner's shape is what stage 1 learned: another one cannot start from it
    other_model = toy_config(tmp_path, *RESUME_OVERRIDES, "train.stages=[stage2]", "model.text.n_ctx=4",
                             "name=other", f"train.stage1_checkpoint={first.last_checkpoint}")
    with pytest.raises(CheckpointError, match=r"cannot start stage 2 from .*stage1.pt.*model.text.n_ctx: 8 -> 4"):
        train(other_model, parts=toy_parts(other_model), console=False)
    # pooling, adapters and prompts only shape stage 2 (stage 1 averages frames of the plain tower): the demo's
    # ablations may reuse it
    mean_pooling = toy_config(tmp_path, *RESUME_OVERRIDES, "train.stages=[stage2]", "model.pooling=mean",
                              "model.adapter.bottleneck=16", "model.pbp.enabled=false",
                              "name=mean", f"train.stage1_checkpoint={first.last_checkpoint}")
    assert train(mean_pooling, parts=toy_parts(mean_pooling), console=False).completed


def test_a_checkpoint_of_the_default_losses_holds_no_loss_state(uninterrupted):
    """No term learns by default: the checkpoints keep their keys, the optimiser its groups."""
    assert "criterion" not in uninterrupted and not any("centre" in key for key in uninterrupted["model"])
    groups = [g["name"] for g in uninterrupted["optimizer"]["param_groups"]]
    assert groups == ["new", "new.bias", "backbone_tail", "backbone_tail.bias"]


CENTRE_OVERRIDES = (*RESUME_OVERRIDES, "train.stages=[stage2]", "train.stage2.loss.i2t_weight=0",
                    "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0",
                    "train.stage2.loss.centre_weight=0.5", "train.stage2.loss.centre_lr_mult=5")


def test_stage2_with_the_centre_loss_trains_the_centres_and_resumes_exactly(tmp_path):
    cfg = toy_config(tmp_path / "whole", *CENTRE_OVERRIDES)
    whole = train(cfg, parts=toy_parts(cfg, dropout=0.2), console=False)
    reference = load_checkpoint(whole.last_checkpoint)
    centres = reference["criterion"]
    assert sorted(centres) == [f"terms.centre.centres.{i}" for i in range(3)]
    assert all(float(c.abs().sum()) > 0 for c in centres.values())  # they start at the origin
    assert whole.final_metrics["centre"] > 0 and "centre" in _records(whole.run_dir, "step", "stage2")[0]
    group = next(g for g in reference["optimizer"]["param_groups"] if g["name"] == "loss.centre")
    assert group["weight_decay"] == 0.0 and math.isclose(group["initial_lr"], 5 * cfg.train.stage2.lr)

    cfg = toy_config(tmp_path / "stopped", *CENTRE_OVERRIDES)
    assert not train(cfg, parts=toy_parts(cfg, dropout=0.2), stop_at=("stage2", 4), console=False).completed
    resumed = train(cfg, resume="auto", parts=toy_parts(cfg, dropout=0.2), console=False)
    final = load_checkpoint(resumed.last_checkpoint)
    for key, value in [*reference["model"].items(), *centres.items()]:
        assert torch.equal({**final["model"], **final["criterion"]}[key], value), key
    for index, moments in reference["optimizer"]["state"].items():
        for name, value in moments.items():
            assert torch.equal(final["optimizer"]["state"][index][name], value), (index, name)


def test_resume_with_a_different_config_is_refused_before_training(tmp_path):
    cfg = toy_config(tmp_path, "train.stages=[stage2]", "train.stage2.loss.i2t_weight=0",
                     "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0")
    train(cfg, parts=toy_parts(cfg), stop_at=("stage2", 2), console=False)
    changed = toy_config(tmp_path, "train.stages=[stage2]", "train.stage2.loss.i2t_weight=0",
                         "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0", "train.stage2.lr=0.5")
    with pytest.raises(CheckpointError, match=r"train\.stage2\.lr: 0\.01 -> 0\.5"):
        train(changed, resume="auto", parts=toy_parts(changed), console=False)
    with pytest.raises(CheckpointError, match=r"to start afresh, train into another run folder \(name=\.\.\. or "
                       r"out_dir=\.\.\.; for `farreid demo`: --fresh, or another --out\)"):
        train(changed, resume="auto", parts=toy_parts(changed), console=False)
    with pytest.raises(FarreidError, match="already holds checkpoints"):
        train(cfg, parts=toy_parts(cfg), console=False)
    fewer_ids = toy_config(tmp_path, "train.stages=[stage2]", "train.stage2.loss.i2t_weight=0",
                           "train.stage2.loss.supcon_i2t_weight=0", "train.stage2.loss.supcon_t2i_weight=0")
    with pytest.raises(CheckpointError, match="12 identities but the training split now has 10"):
        train(fewer_ids, resume="auto", parts=toy_parts(fewer_ids, ids=10), console=False)


def test_stage2_alone_needs_the_stage1_result(tmp_path):
    cfg = toy_config(tmp_path, "train.stages=[stage2]")
    with pytest.raises(CheckpointError, match="needs the stage-1 result"):
        train(cfg, parts=toy_parts(cfg), console=False)
    assert not (tmp_path / "toy").exists()  # refused before the run directory was made


def test_missing_dataset_root_is_the_first_error(tmp_path, capsys):
    cfg = load_config("demo_tiny", [f"data.root={tmp_path / 'nowhere'}", f"out_dir={tmp_path}"])
    with pytest.raises(FarreidError, match="dataset root not found: .*nowhere.*data.root"):
        train(cfg)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-c", "demo_tiny", f"data.root={tmp_path / 'nowhere'}", f"out_dir={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "dataset root not found" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_batch_needing_more_identities_than_available_is_refused(tmp_path):
    cfg = toy_config(tmp_path, "data.ids_per_batch=16", "data.val_ids=2")
    with pytest.raises(ConfigError, match=r"'data.ids_per_batch' = 16 .* has \(10 after holding out data.val_ids = 2"):
        train(cfg, parts=toy_parts(cfg, ids=12, val_ids=2), console=False)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.stage2.epochs=0", "'train.stage2.epochs' = 0 must be > 0"),
        ("train.stage2.loss.label_smoothing=1.5", "must be in \\[0, 1\\)"),
        ("train.stage2.warmup_epochs=60", "must be smaller than train.stage2.epochs"),
        ("train.stage1.warmup_factor=0", "must be in \\(0, 1\\]"),
        ("train.stage2.loss.triplet_weight=-1", "must be >= 0"),
        ("train.stage2.loss.centre_weight=-1", "must be >= 0"),
        ("train.stage2.min_lr=1", "must not exceed train.stage2.lr"),
        ("train.stages=[stage1,stage1]", "must not repeat"),
    ],
)
def test_out_of_range_settings_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        check_train_config(load_config("demo_tiny", [override]))


def test_every_loss_weight_counts_for_the_one_positive_weight_rule():
    off = [f"train.stage2.loss.{w}=0" for w in ("id_weight", "triplet_weight", "i2t_weight", "supcon_i2t_weight",
                                                 "supcon_t2i_weight")]
    with pytest.raises(ConfigError, match="at least one loss term needs a positive weight"):
        check_train_config(load_config("demo_tiny", off))
    check_train_config(load_config("demo_tiny", [*off, "train.stage2.loss.centre_weight=0.001"]))


@pytest.mark.parametrize("recipe", ["demo_tiny", "detreidx_vitb16", "detreidx_vitl14"])
def test_shipped_recipes_pass_the_training_checks(recipe):
    cfg = load_config(recipe)
    check_train_config(cfg)
    assert cfg.train.stages == ["stage1", "stage2"]
