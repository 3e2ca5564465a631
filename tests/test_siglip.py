"""SigLIP, the second backbone family: parity with transformers, its tokenizer, and FarReID on it."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from _inference_data import one_thread  # noqa: F401  (autouse fixture: tiny models run faster on one thread)
from _siglip_folder import captions, siglip_folder
from farreid.config import AdapterConfig, ModelConfig, PromptConfig, TextConfig
from farreid.models import FarReID
from farreid.models.backbone import create_backbone
from farreid.models.siglip import SigLIP, SiglipTokenizer

transformers = pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("siglip")
    return path, siglip_folder(path)


def test_a_siglip_folder_is_read_by_the_siglip_family(folder):
    path, _ = folder
    model = create_backbone("auto", pretrained=str(path))
    assert isinstance(model, SigLIP) and model.tokenizer is not None
    assert model.spec.vision.layers == 3 and model.spec.text.context_length == 16
    assert isinstance(create_backbone(str(path)), SigLIP)  # the folder given as model.backbone


@pytest.mark.parametrize("size", [(32, 32), (48, 24)])
def test_image_embedding_matches_siglip_vision_model(folder, size):
    path, hf = folder
    ours = create_backbone("auto", pretrained=str(path), image_size=size).eval()
    images = torch.randn(3, 3, *size)
    with torch.no_grad():
        theirs = hf.vision_model(pixel_values=images, interpolate_pos_encoding=size != (32, 32))
        mine = ours.visual(images, return_blocks=(-2,))
        hidden = hf.vision_model(pixel_values=images, interpolate_pos_encoding=size != (32, 32), output_hidden_states=True)
    assert (theirs.last_hidden_state - mine.tokens).abs().max() <= 1e-5
    assert (hidden.hidden_states[-2] - mine.blocks[-2]).abs().max() <= 1e-5
    assert (theirs.pooler_output - mine.projected).abs().max() <= 1e-5


def test_text_embedding_and_logits_match_siglip_model(folder):
    path, hf = folder
    ours = create_backbone("auto", pretrained=str(path)).eval()
    reference = transformers.SiglipTokenizer(str(path / "spiece.model"))
    texts = ["a person in a red coat", "green shorts and a backpack, far away", ""]
    ids = reference(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")["input_ids"]
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        theirs = hf(input_ids=ids, pixel_values=images)
        assert (theirs.text_embeds - torch.nn.functional.normalize(ours.encode_text(ids), dim=-1)).abs().max() <= 1e-5
        assert (theirs.image_embeds - torch.nn.functional.normalize(ours.encode_image(images), dim=-1)).abs().max() <= 1e-5
        assert (theirs.logits_per_text - ours.logits_per_text(ids, images)).abs().max() <= 1e-4


def test_tokenizer_matches_siglip_tokenizer(folder):
    path, _ = folder
    reference = transformers.SiglipTokenizer(str(path / "spiece.model"))
    ours = SiglipTokenizer(path / "spiece.model")
    texts = captions(40, seed=7) + ["  Odd   SPACING,\tand punctuation!!", "", "zebra quux", "x" * 50, "red " * 30]
    expected = reference(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")["input_ids"]
    assert torch.equal(ours(texts, context_length=16), expected)
    assert (ours.pad_id, ours.eos_id) == (reference.pad_token_id, reference.eos_token_id)


def test_the_prompt_template_is_what_the_tokenizer_makes_of_the_prompt(folder):
    path, _ = folder
    model = create_backbone("auto", pretrained=str(path))
    template = model.text.prompt_template(5)
    words = model.tokenizer(["a a a a a."], context_length=16)[0].tolist()
    learned = slice(template.start, template.start + 5)
    assert len(model.tokenizer.encode("a a a a a.")) == 5  # one piece a placeholder, the full stop dropped
    assert template.ids[: learned.start] + template.ids[learned.stop :] == tuple(words[: learned.start] + words[learned.stop :])
    assert template.read_index == 15


# ----------------------------------------------------------------------------- FarReID on SigLIP towers
def reid(folder_path, num_classes: int = 6, num_keys: int = 3, adapter: dict | None = None, pbp: dict | None = None,
         **model) -> FarReID:
    """FarReID on the tiny SigLIP folder at 64x32; the arguments override `ModelConfig` fields."""
    cfg = ModelConfig(backbone="auto", pretrained=str(folder_path), image_size=[64, 32],
                      adapter=AdapterConfig(bottleneck=32, **(adapter or {})), pbp=PromptConfig(length=2, depth=2, **(pbp or {})),
                      text=TextConfig(n_ctx=2, n_id_tokens=1), finetune_last_n=1)
    return FarReID(replace(cfg, **model), num_classes, num_keys)


def test_farreid_reads_the_three_features_of_the_siglip_tower(folder):
    path, hf = folder
    model = reid(path, adapter=dict(zero_init=True), pbp=dict(enabled=False)).eval()
    clips = torch.randn(2, 3, 3, 64, 32)
    with torch.no_grad():
        frames = model.frame_features(clips)
        theirs = hf.vision_model(pixel_values=clips.flatten(0, 1), interpolate_pos_encoding=True, output_hidden_states=True)
    torch.testing.assert_close(frames.penultimate.flatten(0, 1), theirs.hidden_states[-2].mean(dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(frames.final.flatten(0, 1), theirs.last_hidden_state.mean(dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(frames.projected.flatten(0, 1), theirs.pooler_output, atol=1e-5, rtol=1e-5)
    assert model.embed(clips, None).shape == (2, 64 + 64)


def test_adapters_and_prompts_change_the_siglip_features(folder):
    path, _ = folder
    model = reid(path, adapter=dict(zero_init=True)).eval()
    clips = torch.randn(1, 2, 3, 64, 32).expand(2, -1, -1, -1, -1)
    with torch.no_grad():
        feature = model.embed(clips, torch.tensor([0, 2]))
        assert (feature[0] - feature[1]).abs().max() > 1e-4  # the prompt keys differ
        before = model.embed(clips, torch.tensor([0, 0]))
        model.adapters[1].frame.up.weight.normal_(std=0.1)  # a non-zero adapter
        assert (model.embed(clips, torch.tensor([0, 0])) - before).abs().max() > 1e-4


def test_last_n_finetuning_trains_exactly_the_last_siglip_blocks(folder):
    path, _ = folder
    model = reid(path, finetune_last_n=2)
    tail = {n for g in model.parameter_groups() if g["name"] == "backbone_tail" for n in g["param_names"]}
    expected = {n for n, _ in model.named_parameters() if n.startswith(("backbone.visual.transformer.resblocks.1.",
                                                                         "backbone.visual.transformer.resblocks.2."))}
    assert tail == expected and {n for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")} == expected
    out = model(torch.randn(2, 2, 3, 64, 32), torch.tensor([0, 1]))
    (sum(x.sum() for x in out.logits) + sum(f.pow(2).mean() for f in out.triplet_features)).backward()
    blocks = model.backbone.visual.blocks
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in blocks[2].parameters())
    assert all(p.grad is None for p in blocks[0].parameters())
    assert model.backbone.visual.head.probe.grad is None and model.backbone.visual.patch_embedding.weight.grad is None
    whole = reid(path, finetune_last_n=3)
    assert {n for g in whole.parameter_groups() if g["name"] == "backbone_tail" for n in g["param_names"]} == {
        f"backbone.visual.{n}" for n, _ in whole.backbone.visual.named_parameters()}


def test_identity_prompts_train_through_the_frozen_siglip_text_tower(folder):
    path, _ = folder
    model = reid(path)
    model.set_stage("stage1")
    features = model.text_features(torch.tensor([0, 3, 3]))
    assert features.shape == (3, 64)
    torch.testing.assert_close(features[1], features[2])
    features.sum().backward()
    assert model.prompt_learner.id_tokens.grad[3].abs().sum() > 0 and model.prompt_learner.id_tokens.grad[1].abs().sum() == 0
    assert all(p.grad is None for p in model.backbone.text.parameters())


def test_both_stages_train_on_siglip_and_the_checkpoint_rebuilds_without_the_folder(folder, tmp_path):
    from farreid.config import load_config
    from farreid.data.synthetic import generate
    from farreid.engine import train
    from farreid.inference.loading import load_trained_model

    path, _ = folder
    data = tmp_path / "data"
    generate(data, num_ids=8, seed=0, frames=4, ground_tracklets=2, aerial_tracklets=1)
    weights = tmp_path / "siglip"
    shutil.copytree(path, weights)
    cfg = load_config(None, [
        f"out_dir={tmp_path}/runs", "name=siglip", f"data.root={data}", "data.dataset=detreidx",
        "model.image_size=[64,32]", "data.train_frames=2", "data.test_frames=2", "data.ids_per_batch=2",
        "data.tracklets_per_id=2", "data.workers=0", "model.backbone=auto", f"model.pretrained={weights}",
        "model.adapter.bottleneck=32", "model.pbp.length=2", "model.pbp.depth=2", "model.pbp.key=platform",
        "model.finetune_last_n=1", "model.text.n_ctx=2", "model.text.n_id_tokens=1",
        "train.stages=[stage1,stage2]", "train.stage1.epochs=2", "train.stage1.warmup_epochs=0",
        "train.stage1.batch_size=4", "train.stage2.epochs=1", "train.stage2.warmup_epochs=0",
        "eval.batch_size=8", "device=cpu", "precision=fp32",
    ])
    result = train(cfg, console=False)
    assert result.completed and result.stages == ["stage1", "stage2"]
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert state["model_info"]["backbone"]["family"] == "siglip"

    trained = FarReID(cfg.model, int(state["num_classes"]), 2)
    trained.load_state_dict(state["model"])
    shutil.rmtree(weights)  # a deployment machine has the checkpoint only
    loaded = load_trained_model(result.last_checkpoint).model
    assert isinstance(loaded.backbone, SigLIP)
    clips, keys = torch.randn(2, 2, 3, 64, 32), torch.tensor([0, 1])
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(clips, keys), trained.eval().embed(clips, keys), rtol=0, atol=0)
