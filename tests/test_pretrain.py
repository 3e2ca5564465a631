"""Vision-language pretraining: captions, the corpus, the contrastive stage (exact resume), zero-shot scoring,
the shipped towers through every reader path, and bad input stopped before any work."""

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from farreid.config import load_config
from farreid.data.synthetic.appearance import sample_appearance
from farreid.data.synthetic.captions import PATTERN_WORDS, CaptionView, attribute_query, caption
from farreid.data.synthetic.corpus import person_appearance, render_corpus
from farreid.engine.pretrain import contrastive_loss, pretrain
from farreid.errors import FarreidError
from farreid.eval.zeroshot import average_precision, zero_shot_attributes
from farreid.models.clip import ClipTokenizer, create_clip, read_checkpoint
from farreid.models.clip.configs import clip_config
from farreid.models.clip.shipped import SHIPPED

# a pretraining run small enough for a test: the `test` towers, 64x32 renders, 16 pairs a step
SMALL = ["model.backbone=test", "model.image_size=[64,32]", "pretrain.num_ids=12", "pretrain.images_per_id=4",
         "pretrain.heldout_ids=6", "pretrain.heldout_images_per_id=2", "pretrain.epochs=2", "pretrain.batch_size=16",
         "train.log_every=1", "train.checkpoint_every=1", "device=cpu", "precision=fp32"]


def test_captions_name_only_what_was_drawn():
    rng = np.random.default_rng(0)
    texts, altitudes = set(), 0
    for i in range(40):
        app = sample_appearance(np.random.default_rng([5, i]))
        view = CaptionView("aerial", "back", altitude=40.0) if i % 2 else CaptionView("ground", "front")
        text = caption(app, view, rng)
        texts.add(text.split(" ")[0])
        assert app.top_name in text and "top" in text  # the top is always named
        pattern = PATTERN_WORDS[app.pattern]
        assert (pattern in text) if pattern else True
        assert ("backpack" in text) <= (app.backpack is not None)
        assert ("handbag" in text) <= (app.handbag is not None)
        if i % 2:
            altitudes += "40 m" in text
        else:
            assert "drone" not in text and "aerial" not in text
    assert len(texts) >= 3 and altitudes >= 3  # several templates; some name the drone's height
    assert attribute_query("top", "orange") == "a person in an orange top"


def test_corpus_is_seeded_and_its_people_are_not_the_demo_people(tmp_path):
    a = render_corpus(6, 3, seed=0, size=(64, 32), show_progress=False)
    b = render_corpus(6, 3, seed=0, size=(64, 32), show_progress=False)
    held = render_corpus(6, 3, seed=0, size=(64, 32), split="heldout", show_progress=False)
    assert a.images.shape == (18, 3, 64, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert not torch.equal(a.images, held.images)
    assert {x["platform"] for x in a.attributes} <= {"ground", "aerial"}
    from farreid.data.synthetic import generate

    summary = generate(tmp_path / "demo", num_ids=8, seed=0, frames=2, ground_tracklets=1, aerial_tracklets=1)
    demo_people = [json.dumps(p, sort_keys=True) for p in summary["appearance"].values()]
    corpus_people = [json.dumps(dataclasses.asdict(person_appearance(0, split, p)), sort_keys=True)
                     for split in ("train", "heldout") for p in range(200)]
    assert len(set(corpus_people)) == len(corpus_people) and not set(demo_people) & set(corpus_people)


def test_contrastive_loss_is_symmetric_cross_entropy():
    torch.manual_seed(0)
    image, text = torch.randn(5, 8), torch.randn(5, 8)
    scale = torch.tensor(np.log(10.0))
    out = contrastive_loss(image, text, scale)
    logits = 10 * torch.nn.functional.normalize(image) @ torch.nn.functional.normalize(text).T
    target = torch.arange(5)
    expected = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    assert torch.allclose(out["loss"], expected)
    aligned = contrastive_loss(image, image, torch.tensor(np.log(100.0)))["loss"]
    assert aligned < out["loss"]


def test_average_precision_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert average_precision(scores, np.array([True, False, True, False])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores, np.array([False, False, False, True])) == pytest.approx(0.25)


def test_pretraining_learns_checkpoints_and_resumes_exactly(tmp_path):
    cfg = load_config("pretrain_tiny", [f"out_dir={tmp_path}/a", *SMALL])
    full = pretrain(cfg, console=False)
    assert full.completed and full.towers.is_file()
    assert hashlib.sha256(full.towers.read_bytes()).hexdigest() == full.sha256
    from farreid.utils.log import read_metrics

    records = read_metrics(full.run_dir / "log.jsonl")
    steps = [r for r in records if r["event"] == "step"]
    assert len(steps) == 6 and steps[-1]["loss"] < steps[0]["loss"]
    assert [r["epoch"] for r in records if r["event"] == "validation"] == [1, 2]
    assert "top_mAP" in full.zero_shot and 0 <= full.zero_shot["top_mAP"] <= 1

    cfg_b = load_config("pretrain_tiny", [f"out_dir={tmp_path}/b", *SMALL])
    stopped = pretrain(cfg_b, console=False, stop_at=4)  # mid-epoch 2
    assert not stopped.completed and stopped.towers is None
    with pytest.raises(FarreidError, match="--resume auto"):
        pretrain(cfg_b, console=False)
    resumed = pretrain(cfg_b, resume="auto", console=False)
    assert resumed.completed and resumed.sha256 == full.sha256  # bit-exact continuation

    changed = load_config("pretrain_tiny", [f"out_dir={tmp_path}/b", *SMALL, "pretrain.lr=0.01"])
    with pytest.raises(FarreidError, match="pretrain.lr"):
        pretrain(changed, resume="auto", console=False)


def test_pretrained_towers_load_as_model_pretrained(tmp_path):
    cfg = load_config("pretrain_tiny", [f"out_dir={tmp_path}", *SMALL])
    result = pretrain(cfg, console=False, export=tmp_path / "copy.safetensors")
    assert (tmp_path / "copy.safetensors").read_bytes() == result.towers.read_bytes()
    from farreid.models import FarReID

    demo = load_config("demo_tiny", ["model.backbone=test", f"model.pretrained={result.towers}",
                                     "model.image_size=[64,32]", "model.pbp.depth=1", "model.finetune_last_n=1"])
    model = FarReID(demo.model, num_classes=4, num_keys=2)
    state = read_checkpoint(result.towers).state
    assert torch.equal(model.backbone.text.token_embedding.weight, state["token_embedding.weight"].float())


@pytest.mark.parametrize("kind", ["shipped-name", "safetensors", "state-dict", "open_clip", "openai-torchscript"])
def test_shipped_towers_through_every_reader(kind, tmp_path):
    from test_clip_checkpoints import _write

    shipped = read_checkpoint("synthetic-people-tiny")
    assert shipped.path == SHIPPED["synthetic-people-tiny"] and shipped.kind == "safetensors"
    assert shipped.spec.architecture() == clip_config("tiny").architecture()
    if kind == "shipped-name":
        path = "synthetic-people-tiny"
    elif kind == "safetensors":
        path = SHIPPED["synthetic-people-tiny"]
    else:
        path = _write(kind, shipped.state, tmp_path)
    clip = create_clip("tiny", pretrained=path, image_size=(96, 48)).eval()
    reference = create_clip("tiny", pretrained="synthetic-people-tiny", image_size=(96, 48)).eval()
    images = torch.randn(2, 3, 96, 48)
    tokens = ClipTokenizer.from_path()(["a person in a red top", "a drone photo"])
    with torch.no_grad():
        assert torch.equal(clip.encode_image(images), reference.encode_image(images))
        assert torch.equal(clip.encode_text(tokens), reference.encode_text(tokens))


def test_shipped_towers_are_a_vision_language_model():
    """Zero-shot top-colour retrieval on people the towers never saw, well above a random ranking."""
    clip = create_clip("tiny", pretrained="synthetic-people-tiny")
    held = render_corpus(60, 4, seed=0, size=(96, 48), split="heldout", show_progress=False)
    scores = zero_shot_attributes(clip, ClipTokenizer.from_path(), held.images, held.attributes)
    assert scores["top_mAP"] > 2 * scores["top_chance_mAP"]
    assert scores["top_accuracy"] > 2 * scores["top_chance_accuracy"]


@pytest.mark.parametrize("case", ["missing-folder", "out-is-a-folder", "unwritable", "mismatched-recipe", "bad-name"])
def test_bad_pretrain_input_stops_before_any_work(case, tmp_path, monkeypatch, capsys):
    import farreid.data.synthetic.corpus as corpus

    def no_work(*args, **kwargs):
        raise AssertionError("the corpus was rendered before the input was checked")

    monkeypatch.setattr(corpus, "render_corpus", no_work)
    args = ["pretrain", f"out_dir={tmp_path}/runs", *SMALL]
    if case == "missing-folder":
        args += ["--out", str(tmp_path / "nowhere" / "towers.safetensors")]
        expected = "does not exist"
    elif case == "out-is-a-folder":
        args += ["--out", str(tmp_path)]
        expected = "is a folder"
    elif case == "unwritable":
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        args += ["--out", str(locked / "towers.safetensors")]
        expected = "not a writable folder"
    elif case == "mismatched-recipe":
        args += ["model.pretrained=synthetic-people-tiny"]  # the recipe names the `test` towers
        expected = "disagrees with checkpoint"
    else:
        args += ["pretrain.output=../escape.safetensors"]
        expected = "pretrain.output"
    from farreid.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert expected in message and message.count("\n") == 1, message
