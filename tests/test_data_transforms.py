"""Clip-consistent augmentation: same parameters for every frame, seeded determinism, the individual ops."""

import pytest
import torch

from farreid.config import AugConfig, load_config
from farreid.data import ClipAugment, ClipEval
from farreid.data.degrade import degrade, gaussian_blur, jpeg_like, quant_tables
from farreid.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    adjust_hue,
    adjust_saturation,
    normalize,
    pad_crop,
    resize_clip,
)

ALWAYS = dict(flip_prob=1.0, pad=6, jitter_prob=1.0, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1,
              erase_prob=1.0, degrade_prob=1.0, degrade_min_height=12, degrade_max_height=30,
              degrade_noise=0.0, degrade_platforms=("ground", "aerial"))


def _frame(seed=0, h=64, w=32):
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.parametrize("seed", range(8))
def test_every_frame_of_a_clip_gets_the_same_parameters(seed):
    clip = _frame(seed).unsqueeze(0).repeat(4, 1, 1, 1)  # four identical frames
    out = ClipAugment(AugConfig(**ALWAYS))(clip, "ground", torch.Generator().manual_seed(seed))
    assert out.shape == (4, 3, 64, 32) and out.dtype == torch.float32
    for t in range(1, 4):
        assert torch.allclose(out[0], out[t], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_parameters_do_not_depend_on_frame_position(seed):
    """Swapping two different frames swaps the outputs: each frame sees the same flip, crop, jitter and box."""
    a, b = _frame(seed), _frame(seed + 50)
    aug = ClipAugment(AugConfig(**{**ALWAYS, "degrade_prob": 0.0}))
    ab = aug(torch.stack([a, b]), "ground", torch.Generator().manual_seed(seed))
    ba = aug(torch.stack([b, a]), "ground", torch.Generator().manual_seed(seed))
    assert torch.allclose(ab[0], ba[1], atol=1e-6) and torch.allclose(ab[1], ba[0], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_seeded_determinism_and_seed_sensitivity(seed):
    clip = torch.stack([_frame(seed + i) for i in range(3)])
    aug = ClipAugment(AugConfig(**ALWAYS))
    a = aug(clip, "ground", torch.Generator().manual_seed(seed))
    b = aug(clip, "ground", torch.Generator().manual_seed(seed))
    c = aug(clip, "ground", torch.Generator().manual_seed(seed + 100))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sensor_noise_differs_per_frame_with_one_strength():
    clip = torch.stack([_frame(4)] * 3)
    aug = ClipAugment(AugConfig(flip_prob=0, pad=0, jitter_prob=0, erase_prob=0, degrade_prob=1.0,
                                degrade_min_height=64, degrade_max_height=64, degrade_noise=0.05))
    clean = ClipAugment(AugConfig(flip_prob=0, pad=0, jitter_prob=0, erase_prob=0, degrade_prob=0.0))
    noise = aug(clip, "ground", torch.Generator().manual_seed(1)) - clean(clip, "ground", torch.Generator())
    assert noise.abs().sum() == 0  # at full height nothing is degraded
    aug.aug.degrade_min_height = aug.aug.degrade_max_height = 20
    out = aug(clip, "ground", torch.Generator().manual_seed(1))
    assert not torch.allclose(out[0], out[1])
    assert torch.allclose(out[0].mean(), out[1].mean(), atol=0.05)


def test_degradation_applies_only_to_the_configured_platforms():
    clip = torch.stack([_frame(5)] * 2)
    aug = ClipAugment(AugConfig(flip_prob=0, pad=0, jitter_prob=0, erase_prob=0, degrade_prob=1.0,
                                degrade_platforms=["ground"]))
    aerial = aug(clip, "aerial", torch.Generator().manual_seed(0))
    assert torch.allclose(aerial, normalize(clip.float() / 255))
    ground = aug(clip, "ground", torch.Generator().manual_seed(0))
    assert not torch.allclose(ground, aerial)


def test_degrade_removes_fine_detail_and_keeps_size():
    clip = _frame(2, 128, 64).float().unsqueeze(0) / 255
    out = degrade(clip, target_height=16, blur_sigma=0.5, quality=50)
    assert out.shape == clip.shape and 0 <= out.min() and out.max() <= 1
    detail = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    assert detail(out) < 0.3 * detail(clip)
    assert torch.equal(degrade(clip, target_height=200, blur_sigma=1.0, quality=10), clip)


def test_jpeg_like_is_nearly_lossless_at_quality_100_and_lossy_at_10():
    x = torch.rand(2, 3, 20, 12, generator=torch.Generator().manual_seed(0))
    smooth = gaussian_blur(x, 2.0)
    assert (jpeg_like(smooth, 100) - smooth).abs().max() < 0.02
    assert (jpeg_like(smooth, 10) - smooth).abs().mean() > (jpeg_like(smooth, 90) - smooth).abs().mean()
    assert quant_tables(50)[0, 0, 0] == 16


def test_blur_preserves_constant_images_and_mean():
    x = torch.full((1, 3, 9, 7), 0.4)
    assert torch.allclose(gaussian_blur(x, 1.3), x, atol=1e-6)


def test_individual_ops():
    x = torch.rand(2, 3, 10, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(adjust_hue(x, 0.0), x.clamp(0, 1), atol=1e-5)
    gray = adjust_saturation(x, 0.0)
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-6)
    assert torch.equal(pad_crop(x, 2, 2, 2), x)
    assert pad_crop(x, 2, 0, 0)[..., :2, :].abs().sum() == 0
    assert resize_clip((x * 255).to(torch.uint8), (20, 12)).shape == (2, 3, 20, 12)
    normed = normalize(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2))
    assert torch.allclose(normed, torch.zeros_like(normed), atol=1e-6)
    assert torch.allclose(normalize(torch.ones(1, 3, 1, 1)).flatten(),
                          (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD))


def test_eval_transform_is_normalisation_only_and_from_config_builds():
    clip = torch.stack([_frame(9)] * 2)
    assert torch.allclose(ClipEval()(clip, "aerial"), normalize(clip.float() / 255))
    aug = ClipAugment(load_config("demo_tiny").data.aug)
    assert aug(clip, "ground", torch.Generator().manual_seed(0)).shape == (2, 3, 64, 32)
