"""ONNX export: parity with PyTorch and with ReIDModel.embed, dynamic batch and frames, metadata, clear errors."""

import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _inference_data import one_thread, png_tracklet, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from farreid.data.transforms import normalize
from farreid.errors import FarreidError
from farreid.inference import ReIDModel
from farreid.inference.export import export_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    trained = tiny_trained(tmp_path_factory)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", "--checkpoint", str(trained.checkpoint), "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output
    return trained, path


def test_onnx_matches_the_pytorch_embeddings_at_any_batch_and_length(exported, tmp_path):
    trained, path = exported
    model = ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="fp32")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(3)
    for b, t in ((1, 4), (3, 4), (2, 9)):
        frames = torch.randint(0, 256, (b, t, 3, 64, 32), dtype=torch.uint8, generator=g)
        platforms = ["aerial" if i % 2 else "ground" for i in range(b)]
        expected = model.with_settings(num_frames=t).embed(frames, platform=platforms)  # flip TTA, as exported
        clip = normalize(frames.float().flatten(0, 1) / 255).view(b, t, 3, 64, 32)
        feed = {"clip": clip.numpy(), "keys": np.array([i % 2 for i in range(b)]), "mask": np.ones((b, t), bool)}
        got = session.run(["embedding"], feed)[0]
        assert got.shape == (b, model.dim)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_file_describes_its_inputs(exported):
    _, path = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["prompt_key"] == "platform" and props["num_keys"] == "2" and props["flip"] == "true"
    assert props["input_size"] == "64x32" and props["dim"] == "192" and props["mean"].startswith("0.485")
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(str(path)).graph.input}
    assert inputs["clip"][2:] == [3, 64, 32] and all(isinstance(d, str) for d in inputs["clip"][:2])


def test_missing_onnx_packages_give_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(FarreidError, match=r"ONNX export needs onnxscript: pip install 'farreid\[export\]'"):
        export_onnx(tmp_path / "unused.pt", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
