"""ReIDModel: checkpoint loading, every input form, batching, metadata, precision, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

import farreid
from _inference_data import one_thread, png_tracklet, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.config import AdapterConfig, ModelConfig, PromptConfig
from farreid.data import Tracklet
from farreid.engine import CheckpointError, load_checkpoint, save_checkpoint
from farreid.errors import FarreidError
from farreid.inference import ReIDModel
from farreid.models import FarReID


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.fixture(scope="module")
def model(trained):
    return ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="fp32")


def test_from_checkpoint_rebuilds_the_trained_model(trained, model):
    assert farreid.ReIDModel is ReIDModel
    assert model.size == (64, 32) and model.dim == 128 + 64 and model.model.cfg.pbp.key == "platform"
    state = load_checkpoint(trained.checkpoint)
    assert state["model_info"]["num_keys"] == 2 and state["model_info"]["backbone"]["spec"]["name"] == "test"
    weights = model.model.state_dict()
    for key in ("backbone.visual.transformer.resblocks.1.mlp.c_fc.weight", "adapters.0.temporal.up.weight", "pool.score.weight"):
        torch.testing.assert_close(weights[key], state["model"][key], rtol=0, atol=0)
    assert model.model.backbone.text is None  # inference drops the training-only text tower
    assert ReIDModel.from_checkpoint(trained.run, device="cpu").source == str(trained.checkpoint)  # a run folder


def test_every_input_form_gives_the_same_embedding(tmp_path, model):
    paths = png_tracklet(tmp_path / "person", frames=5, size=(40, 80))
    images = [Image.open(p) for p in paths]
    arrays = [np.asarray(im.convert("RGB")) for im in images]
    uint8_clip = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (T, 3, 80, 40): resized like files
    at_size = np.stack([np.asarray(im.convert("RGB").resize((32, 64), Image.BICUBIC)) for im in images])
    float_clip = torch.from_numpy(at_size).permute(0, 3, 1, 2).float() / 255  # (T, 3, 64, 32), in [0, 1]
    record = Tracklet([str(p) for p in paths], -1, 0, "ground", "person")
    reference = model.embed(tmp_path / "person")
    assert reference.shape == (1, model.dim) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-6)
    forms = {
        "frame paths": [str(p) for p in paths], "PIL images": images, "uint8 arrays": arrays,
        "uint8 tensor": uint8_clip, "batched tensor": uint8_clip[None], "float tensor": float_clip,
        "Tracklet": record, "list of one folder": [tmp_path / "person"],
    }
    for name, form in forms.items():
        np.testing.assert_allclose(model.embed(form), reference, atol=2e-6, err_msg=name)


def test_tracklets_of_different_lengths_batch_like_one_at_a_time(tmp_path, model):
    folders = []
    for i, length in enumerate((1, 3, 7, 12, 4)):
        png_tracklet(tmp_path / f"t{i}", frames=length, seed=i)
        folders.append(tmp_path / f"t{i}")
    platforms = ["ground", "aerial", "aerial", "ground", "aerial"]
    for dense in (False, True):
        runner = model.with_settings(dense=dense, batch_size=3)
        together = runner.embed(folders, platform=platforms, altitude=[None, 40.0, 80.0, None, 20.0])
        alone = np.concatenate([runner.embed(f, platform=p) for f, p in zip(folders, platforms)])
        np.testing.assert_allclose(together, alone, atol=2e-6)
    ground = model.embed(folders[2], platform="ground")
    assert np.abs(ground - model.embed(folders[2], platform="aerial")).max() > 1e-4  # the prompts matter
    assert np.abs(model.embed(folders[2], flip=False) - ground).max() > 1e-4  # flip TTA is on by default


def test_bf16_autocast_is_close_to_fp32(trained, model, tmp_path):
    png_tracklet(tmp_path / "p", frames=6)
    bf16 = ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="bf16")
    cosine = float((bf16.embed(tmp_path / "p") * model.embed(tmp_path / "p")).sum())
    assert cosine > 0.99


def test_a_checkpoint_without_the_architecture_record_is_refused(trained, tmp_path):
    state = dict(load_checkpoint(trained.checkpoint))
    del state["model_info"]  # every checkpoint the engine writes has it
    save_checkpoint(state, tmp_path / "stripped.pt")
    with pytest.raises(CheckpointError, match=r"stripped.pt has no model_info record \(backbone, num_keys\)"):
        ReIDModel.from_checkpoint(tmp_path / "stripped.pt", device="cpu", precision="fp32")


def test_an_in_memory_model_needs_no_config():
    net = FarReID(ModelConfig(backbone="test", image_size=[64, 32], adapter=AdapterConfig(bottleneck=32),
                              pbp=PromptConfig(length=2)), 4, 3)
    model = ReIDModel(net, device="cpu", precision="fp32", num_frames=2)
    clips = torch.rand(3, 5, 3, 64, 32)
    out = model.embed(clips, camid=[0, 1, 2])
    assert out.shape == (3, 192)
    with pytest.raises(FarreidError, match=r"camera id\(s\) \[5\] have no platform prompt.*camera ids 0..2"):
        model.embed(clips[0], camid=5)


def test_clear_errors(trained, tmp_path, model):
    with pytest.raises(CheckpointError, match="not a farreid training checkpoint"):
        torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
        ReIDModel.from_checkpoint(tmp_path / "other.pt")
    save_checkpoint({"stage": "stage1", "loop": {"complete": True}, "prompt_learner": {}}, tmp_path / "stage1.pt")
    with pytest.raises(CheckpointError, match="stage-1 checkpoint.*use a stage-2 checkpoint"):
        ReIDModel.from_checkpoint(tmp_path / "stage1.pt")
    with pytest.raises(CheckpointError, match="folder without a stage-2 checkpoint"):
        ReIDModel.from_checkpoint(tmp_path)
    with pytest.raises(FarreidError, match="input list is empty"):
        model.embed([])
    with pytest.raises(FarreidError, match="frame file not found"):
        model.embed([tmp_path / "missing.png"])
    with pytest.raises(FarreidError, match="platform has 1 values for 2 tracklets"):
        model.embed(torch.rand(2, 3, 3, 64, 32), platform=["ground"])
    with pytest.raises(FarreidError, match=r"\(T, 3, H, W\) or \(B, T, 3, H, W\)"):
        model.embed(torch.rand(2, 2, 2, 3, 64, 32))
