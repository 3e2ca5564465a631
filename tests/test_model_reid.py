"""FarReID: shapes, adapter/prompt/pooling behaviour, the trainable set and where gradients go."""

from dataclasses import replace

import pytest
import torch

from farreid.config import AdapterConfig, ModelConfig, PromptConfig, load_config
from farreid.errors import FarreidError
from farreid.models import FarReID
from farreid.models.clip import CLIP, CLIP_CONFIGS


def small(num_classes: int = 6, num_keys: int = 3, adapter: dict | None = None, pbp: dict | None = None,
          **model) -> FarReID:
    """A `test`-backbone model (2 blocks, width 128) at 64x32; the arguments override `ModelConfig` fields
    (`adapter` / `pbp`: fields of those sections)."""
    cfg = ModelConfig(backbone="test", image_size=[64, 32], adapter=AdapterConfig(bottleneck=32, **(adapter or {})),
                      pbp=PromptConfig(length=2, **(pbp or {})), finetune_last_n=1)
    return FarReID(replace(cfg, **model), num_classes, num_keys)


def shrunk_clip(name: str, image_size: tuple[int, int], layers: int = 2) -> CLIP:
    """A published architecture with fewer blocks (same widths, patch, grid and embed dim)."""
    spec = CLIP_CONFIGS[name]
    spec = replace(spec, vision=replace(spec.vision, layers=layers), text=replace(spec.text, layers=1))
    return CLIP(spec, image_size=image_size)


@pytest.mark.parametrize("name,size,feature_dim", [("ViT-B/16", (256, 128), 768 + 512), ("ViT-L/14", (252, 126), 1024 + 768)])
def test_shapes_for_the_published_backbones(name, size, feature_dim):
    clip = shrunk_clip(name, size)
    model = FarReID(ModelConfig(pbp=PromptConfig(depth=1)), 5, 3, backbone=clip).eval()
    width = clip.visual.width
    assert clip.visual.grid == ((16, 8) if name == "ViT-B/16" else (18, 9))
    assert model.prompts.prompts.shape == (1, 4, 3, width)
    assert model.adapters[0].temporal.down.out_features == 256 and model.adapters[0].temporal.attn.heads == 4
    clips, keys = torch.randn(2, 2, 3, *size), torch.tensor([0, 2])
    with torch.no_grad():
        out = model(clips, keys)
        assert [tuple(x.shape) for x in out.logits] == [(2, 5), (2, 5)]
        assert [x.shape[1] for x in out.triplet_features] == [width, width, feature_dim - width]
        assert model.triplet_feature_dims == tuple(x.shape[1] for x in out.triplet_features)  # sizes the centres
        feature = model.embed(clips, keys)
    assert feature.shape == (2, feature_dim)
    torch.testing.assert_close(feature.norm(dim=1), torch.ones(2))


def test_zero_init_adapters_without_prompts_leave_clip_unchanged():
    model = small(adapter={"zero_init": True}, pbp={"enabled": False}).eval()
    clips = torch.randn(2, 3, 3, 64, 32)
    with torch.no_grad():
        frames = model.frame_features(clips)
        plain = model.backbone.visual(clips.flatten(0, 1), return_blocks=(-2,))
    torch.testing.assert_close(frames.final.flatten(0, 1), plain.pooled)
    torch.testing.assert_close(frames.projected.flatten(0, 1), plain.projected)
    torch.testing.assert_close(frames.penultimate.flatten(0, 1), plain.blocks[-2][:, 0])
    with torch.no_grad():
        model.adapters[0].frame.up.bias.fill_(0.1)  # a non-zero adapter does change the features
        assert not torch.allclose(model.frame_features(clips).final, frames.final)


def test_mean_pooling_is_invariant_to_frame_order():
    model = small(pooling="mean").eval()
    clips, keys = torch.randn(2, 4, 3, 64, 32), torch.tensor([1, 0])
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        torch.testing.assert_close(model.embed(clips[:, order], keys), model.embed(clips, keys), atol=1e-5, rtol=1e-5)


def test_different_prompt_keys_change_the_output():
    model = small().eval()
    clips = torch.randn(1, 2, 3, 64, 32).expand(2, -1, -1, -1, -1)
    with torch.no_grad():
        feature = model.embed(clips, torch.tensor([0, 2]))
    assert (feature[0] - feature[1]).abs().max() > 1e-4


def test_padded_frames_do_not_change_the_pooled_feature():
    model = small().eval()
    real = torch.randn(2, 3, 3, 64, 32)
    padded = torch.cat([real, 10 * torch.randn(2, 1, 3, 64, 32)], dim=1)
    mask = torch.tensor([[True, True, True, False]] * 2)
    keys = torch.tensor([0, 1])
    with torch.no_grad():
        expected = model(real, keys)
        got = model(padded, keys, mask)
        for a, b in zip(got.triplet_features, expected.triplet_features):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(padded, keys).projected, expected.projected)  # unmasked, they would


def test_trainable_set_is_exactly_the_specified_one():
    clip = shrunk_clip("ViT-B/16", (64, 32), layers=4)
    model = FarReID(ModelConfig(finetune_last_n=2, adapter=AdapterConfig(bottleneck=64), pbp=PromptConfig(depth=3)),
                    4, 2, backbone=clip)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected_prefixes = ("adapters.", "prompts.prompts", "pool.score.", "pool_proj.score.",
                         "backbone.visual.transformer.resblocks.2.", "backbone.visual.transformer.resblocks.3.")
    expected_heads = {f"{h}.{p}" for h in ("head", "head_proj") for p in ("bn.weight", "classifier.weight")}
    expected = {n for n, _ in model.named_parameters() if n.startswith(expected_prefixes)} | expected_heads
    assert trainable == expected
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert set(groups) == {"new", "backbone_tail"} and groups["backbone_tail"]["lr_mult"] == 0.1
    assert set(groups["new"]["param_names"]) | set(groups["backbone_tail"]["param_names"]) == trainable
    assert all(n.startswith("backbone.visual.transformer.resblocks.") for n in groups["backbone_tail"]["param_names"])
    model.set_stage("stage1")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "prompt_learner.prefix_ctx", "prompt_learner.suffix_ctx", "prompt_learner.id_tokens"}
    assert [g["name"] for g in model.parameter_groups("stage1")] == ["prompt_learner"]


def test_a_training_step_reaches_the_tail_blocks_and_nothing_frozen():
    model = small(finetune_last_n=1).train()
    out = model(torch.randn(4, 2, 3, 64, 32), torch.tensor([0, 1, 2, 0]))
    labels = torch.tensor([0, 1, 2, 3])
    loss = sum(torch.nn.functional.cross_entropy(x, labels) for x in out.logits) + sum(
        f.pow(2).mean() for f in out.triplet_features)
    loss.backward()
    blocks = model.backbone.visual.transformer.resblocks
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in blocks[1].parameters())
    assert all(p.grad is None for p in blocks[0].parameters())
    assert model.backbone.visual.conv1.weight.grad is None and model.backbone.visual.proj.grad is None
    assert model.head.bn.bias.grad is None
    assert model.adapters[0].temporal.down.weight.grad.abs().sum() > 0
    assert model.prompts.prompts.grad.abs().sum() > 0
    assert model.pool.score.weight.grad.abs().sum() > 0


def test_frozen_prefix_builds_no_graph_when_nothing_trains_there():
    model = small(adapter={"enabled": False}, pbp={"enabled": False}, finetune_last_n=1)
    frames = model.frame_features(torch.randn(1, 2, 3, 64, 32))
    assert not frames.penultimate.requires_grad and frames.final.requires_grad


def test_text_prompts_train_through_the_frozen_text_tower():
    model = small()
    model.set_stage("stage1")
    features = model.text_features(torch.tensor([0, 3, 3]))
    assert features.shape == (3, 64)
    torch.testing.assert_close(features[1], features[2])
    features.sum().backward()
    assert model.prompt_learner.id_tokens.grad[3].abs().sum() > 0 and model.prompt_learner.id_tokens.grad[1].abs().sum() == 0
    assert all(p.grad is None for p in model.backbone.text.parameters())
    stage1 = model.frame_pooled_projection(torch.randn(2, 3, 3, 64, 32), torch.tensor([[True, True, False]] * 2))
    assert stage1.shape == (2, 64) and not stage1.requires_grad


def test_prompt_keys_from_batch_metadata():
    batch = {"camid": torch.tensor([0, 2]), "platform": torch.tensor([0, 1]),
             "altitude": torch.tensor([float("nan"), 45.0]), "distance": torch.tensor([float("nan"), 10.0])}
    assert small(pbp={"key": "camera"}).prompt_keys(batch).tolist() == [0, 2]
    assert small(pbp={"key": "platform"}).prompt_keys(batch).tolist() == [0, 1]
    altitude = small(pbp={"key": "altitude", "altitude_bins": [20.0, 40.0, 80.0]})
    assert altitude.prompts.num_keys == 5 and altitude.prompt_keys(batch).tolist() == [0, 3]
    assert small(pbp={"key": "distance"}).prompt_keys(batch).tolist() == [0, 1]


def test_clear_errors_for_bad_settings():
    model = small(num_keys=3)
    with pytest.raises(FarreidError, match=r"prompt keys must lie in \[0, 3\)"):
        model(torch.randn(1, 2, 3, 64, 32), torch.tensor([3]))
    with pytest.raises(FarreidError, match="finetune_last_n=3 must lie in"):
        small(finetune_last_n=3)
    with pytest.raises(FarreidError, match="needs the number of camera ids"):
        small(num_keys=0)


def test_from_config_builds_the_demo_model():
    cfg = load_config("demo_tiny")
    model = FarReID(cfg.model, num_classes=8, num_keys=3)
    height, width = cfg.model.image_size
    assert model.backbone.spec.name == "tiny" and model.backbone.visual.grid == (height // 16, width // 16)
    assert model.prompts.num_keys == 2 and model.prompts.depth == 3
    batch = {"clip": torch.randn(2, 4, 3, height, width), "platform": torch.tensor([0, 1])}
    out = model(batch["clip"], model.prompt_keys(batch))
    assert out.projected.shape == (2, 128)
    tail = next(g for g in model.parameter_groups() if g["name"] == "backbone_tail")
    # pretrained start (the shipped towers): only the last two blocks fine-tune, as in the paper
    assert "backbone.visual.conv1.weight" not in tail["param_names"]
    assert {n.split(".")[4] for n in tail["param_names"]} == {"2", "3"}
