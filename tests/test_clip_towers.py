"""The CLIP towers: shapes, hooks (extra tokens, side branches), pos-embed resize, options."""

import torch
from torch import nn

from farreid.models.clip import CLIP, CLIP_CONFIGS, ResidualAttentionBlock, SelfAttention, create_clip, resize_pos_embed


def test_vision_tower_returns_requested_blocks_and_projection():
    model = create_clip("test", image_size=(64, 32)).eval()
    out = model.visual(torch.randn(3, 3, 64, 32), return_blocks=(-2, -1))
    assert model.visual.grid == (4, 2)
    assert set(out.blocks) == {-2, -1}
    assert out.blocks[-2].shape == out.tokens.shape == (3, 1 + 8, 128)
    assert out.pooled.shape == (3, 128) and out.projected.shape == (3, 64)
    torch.testing.assert_close(out.pooled, model.visual.ln_post(out.blocks[-1][:, 0]))
    torch.testing.assert_close(out.projected, out.pooled @ model.visual.proj)


def test_configurable_stride_gives_overlapping_grid():
    model = create_clip("test", image_size=(64, 32), stride=12)
    assert model.visual.grid == ((64 - 16) // 12 + 1, (32 - 16) // 12 + 1)
    assert model.visual(torch.randn(1, 3, 64, 32)).tokens.shape[1] == 1 + 5 * 2


def test_other_input_size_resizes_positions_on_the_fly():
    model = create_clip("test", image_size=(64, 32)).eval()
    assert model.visual(torch.randn(2, 3, 96, 48)).tokens.shape == (2, 1 + 6 * 3, 128)


def test_pos_embed_resize_keeps_cls_row_and_is_identity_on_same_grid():
    pos = torch.randn(1 + 14 * 14, 32).half()
    assert resize_pos_embed(pos, (14, 14), (14, 14)) is pos
    resized = resize_pos_embed(pos, (14, 14), (18, 9))
    assert resized.shape == (1 + 18 * 9, 32) and resized.dtype == torch.float16
    assert torch.equal(resized[0], pos[0])
    reference = resize_pos_embed(pos.float(), (14, 14), (18, 9))  # the fp32 computation
    torch.testing.assert_close(resized, reference.half(), rtol=0, atol=0)


def test_extra_tokens_act_as_keys_and_values_only():
    attn = SelfAttention(64, 4).eval()
    x, extra = torch.randn(2, 5, 64), torch.randn(2, 3, 64)
    full = attn(torch.cat([x, extra], dim=1))[:, :5]  # queries of the extra tokens are dropped
    torch.testing.assert_close(attn(x, extra), full, atol=1e-5, rtol=1e-5)


class _RecordingSide(nn.Module):
    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value
        self.seen: dict[str, torch.Tensor] = {}

    def attn_branch(self, x):
        self.seen["attn"] = x.clone()
        return torch.full_like(x, self.value)

    def mlp_branch(self, x):
        self.seen["mlp"] = x.clone()
        return torch.full_like(x, self.value)


def test_side_branches_read_the_raw_residual_stream():
    block = ResidualAttentionBlock(64, 2, 256).eval()
    x = torch.randn(4, 5, 64)
    side = _RecordingSide()
    out = block(x, side=side)
    torch.testing.assert_close(out, block(x))  # zero branches change nothing
    assert torch.equal(side.seen["attn"], x)
    torch.testing.assert_close(side.seen["mlp"], x + block.attn(block.ln_1(x)))
    shifted = block(x, side=_RecordingSide(1.0))
    y = x + block.attn(block.ln_1(x)) + 1.0
    torch.testing.assert_close(shifted, y + block.mlp(block.ln_2(y)) + 1.0)


def test_attention_mask_hides_keys():
    attn = SelfAttention(64, 4).eval()
    x = torch.randn(2, 5, 64)
    mask = torch.tensor([True, True, True, False, False]).view(1, 1, 1, 5)
    torch.testing.assert_close(attn(x, mask=mask)[:, :3], attn(x[:, :3]), atol=1e-5, rtol=1e-5)


def test_no_grad_prefix_builds_no_graph_before_the_trainable_blocks():
    model = create_clip("test", image_size=(64, 32))
    out = model.visual(torch.randn(2, 3, 64, 32), return_blocks=(0,), no_grad_prefix=1)
    assert not out.blocks[0].requires_grad and out.projected.requires_grad
    out.projected.sum().backward()
    assert model.visual.conv1.weight.grad is None and model.visual.transformer.resblocks[0].ln_1.weight.grad is None
    assert model.visual.transformer.resblocks[1].ln_1.weight.grad is not None


def test_gradient_checkpointing_gives_same_outputs_and_gradients():
    model = create_clip("test", image_size=(64, 32))
    images = torch.randn(2, 3, 64, 32)
    model.visual(images).projected.sum().backward()
    plain = [p.grad.clone() for p in model.visual.parameters()]
    model.zero_grad()
    model.visual.set_grad_checkpointing(True)
    model.visual(images).projected.sum().backward()
    for a, p in zip(plain, model.visual.parameters()):
        torch.testing.assert_close(p.grad, a)


def test_bf16_autocast_option_tracks_fp32():
    fp32 = create_clip("test", image_size=(64, 32)).eval()
    bf16 = create_clip("test", image_size=(64, 32), autocast="bf16").eval()
    bf16.load_state_dict(fp32.state_dict())
    images = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        a, b = fp32.visual(images).projected, bf16.visual(images).projected
    assert b.dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(a, b.float()).min() > 0.99


def test_text_tower_embedding_path_and_causality():
    text = create_clip("test").text.eval()
    ids = torch.tensor([[49406, 320, 1125, 49407, 0, 0], [49406, 736, 2523, 269, 49407, 0]])
    with torch.no_grad():
        direct = text(ids)
        via_embeddings = text.forward_embeddings(text.token_embedding(ids), ids.argmax(-1))
        changed = ids.clone()
        changed[0, 4:] = 500  # tokens after the end of text must not matter (causal mask)
        assert torch.equal(text(changed)[0], direct[0])
    assert direct.shape == (2, 64)
    torch.testing.assert_close(direct, via_embeddings)


def test_named_configs_have_the_published_sizes():
    visual_millions = {"ViT-B/32": 87.8, "ViT-B/16": 86.2, "ViT-L/14": 304.0, "ViT-L/14-336": 304.3}
    for name, expected in visual_millions.items():
        with torch.device("meta"):
            model = CLIP(CLIP_CONFIGS[name])
        count = sum(p.numel() for p in model.visual.parameters()) / 1e6
        assert abs(count - expected) < 0.1, (name, count)
    with torch.device("meta"):
        b16 = CLIP(CLIP_CONFIGS["ViT-B/16"])
    assert abs(sum(p.numel() for p in b16.parameters()) / 1e6 - 149.6) < 0.1


def test_low_precision_cpu_attention_path_matches_fused_kernel():
    """bf16 on CPU takes the two-matmul attention path; it must agree with SDPA, with and without extra tokens."""
    attn = SelfAttention(64, 4).eval()
    x, extra = torch.randn(3, 9, 64), torch.randn(3, 2, 64)
    with torch.no_grad():
        for kv in (None, extra):
            want = attn(x, kv)  # fp32: fused SDPA
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = attn(x, kv)
            assert got.dtype == torch.bfloat16
            torch.testing.assert_close(got.float(), want, atol=3e-2, rtol=3e-2)


def test_quick_gelu_inference_path_equals_the_autograd_path():
    from farreid.models.clip import QuickGELU

    x = torch.randn(5, 7, requires_grad=True)
    before = x.detach().clone()
    want = QuickGELU()(x)
    with torch.no_grad():
        got = QuickGELU()(x)
    torch.testing.assert_close(got, want.detach())
    torch.testing.assert_close(want, x * torch.sigmoid(1.702 * x))
    assert torch.equal(x.detach(), before)  # the in-place inference path leaves its input alone
