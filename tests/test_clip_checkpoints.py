"""Checkpoint readers: every supported format built in tmp, strict loading, clear errors."""

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from farreid.errors import FarreidError
from farreid.models.clip import CheckpointError, TextTower, VisionTower, create_clip, read_checkpoint
from farreid.models.clip.model import split_openai_state_dict


class _Archive(nn.Module):
    """A TorchScript module holding OpenAI-named weights plus the metadata buffers OpenAI's archives carry."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        for key, value in state.items():
            *path, leaf = key.split(".")
            module: nn.Module = self
            for part in path:
                if not hasattr(module, part):
                    module.add_module(part, nn.Module())
                module = getattr(module, part)
            module.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
        self.register_buffer("input_resolution", torch.tensor(64))
        self.register_buffer("context_length", torch.tensor(77))
        self.register_buffer("vocab_size", torch.tensor(49408))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.logit_scale


@pytest.fixture(scope="module")
def reference():
    """A random `test` CLIP whose weights went through fp16 (as OpenAI ships them), and that fp16 state."""
    torch.manual_seed(1)
    model = create_clip("test").eval()
    state = {k: v.half() for k, v in model.openai_state_dict().items()}
    model.load_openai_state_dict(state)
    return model, state


def _write(kind: str, state: dict, folder):
    if kind == "state-dict":
        path = folder / "clip.pt"
        extras = {"input_resolution": torch.tensor(64), "vocab_size": torch.tensor(49408), "attn_mask": torch.ones(77, 77)}
        torch.save({**state, **extras}, path)
    elif kind == "open_clip":
        path = folder / "epoch_3.pt"
        torch.save({"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    elif kind == "openai-torchscript":
        path = folder / "ViT-test.pt"
        torch.jit.script(_Archive(state)).save(str(path))
    else:
        path = folder / "clip.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.mark.parametrize("kind", ["state-dict", "open_clip", "openai-torchscript", "safetensors"])
def test_every_format_loads_to_the_same_model(kind, reference, tmp_path):
    model, state = reference
    path = _write(kind, state, tmp_path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == kind
    assert checkpoint.spec.architecture() == model.spec.architecture()
    assert checkpoint.spec.vision.image_size == 64 and checkpoint.spec.activation == "quick_gelu"
    loaded = create_clip("auto", pretrained=path).eval()
    images, ids = torch.randn(2, 3, 64, 64), torch.tensor([[49406, 320, 49407, 0]])
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), model.encode_image(images))
        assert torch.equal(loaded.encode_text(ids), model.encode_text(ids))


def test_torchscript_is_read_as_data_unless_code_execution_is_allowed(reference, tmp_path):
    _, state = reference
    path = _write("openai-torchscript", state, tmp_path)
    as_data = read_checkpoint(path).state
    executed = read_checkpoint(path, allow_torchscript=True).state
    assert set(as_data) == set(executed)
    assert all(torch.equal(as_data[k], executed[k]) for k in as_data)


def test_openai_state_dict_loads_strictly_into_the_towers(reference):
    model, state = reference
    visual, text, rest = split_openai_state_dict(state)
    assert set(rest) == {"logit_scale"}
    vision = VisionTower.from_spec(model.spec.vision)
    vision.load_state_dict(visual, strict=True)
    tower = TextTower.from_spec(model.spec.text)
    tower.load_state_dict(text, strict=True)


def test_fp16_checkpoint_positions_are_resized_in_fp32(reference, tmp_path):
    _, state = reference
    path = _write("state-dict", state, tmp_path)
    model = create_clip("test", pretrained=path, image_size=(64, 32))
    pos = state["visual.positional_embedding"].float()
    assert torch.equal(model.visual.positional_embedding[0], pos[0])
    expected = torch.nn.functional.interpolate(
        pos[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2), size=(4, 2), mode="bicubic", align_corners=False
    ).permute(0, 2, 3, 1).reshape(8, -1)
    torch.testing.assert_close(model.visual.positional_embedding[1:], expected, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["state-dict", "openai-torchscript"])
def test_truncated_file_names_path_and_expected_kinds(kind, reference, tmp_path):
    path = _write(kind, reference[1], tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"cannot read {path}.*expected an OpenAI CLIP archive"):
        read_checkpoint(path)


def test_wrong_kind_of_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match=f"{path} holds no CLIP ViT image tower"):
        read_checkpoint(path)
    pickled = tmp_path / "object.pt"
    torch.save({"optimizer": torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)}, pickled)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        read_checkpoint(pickled)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_incomplete_weights_name_the_missing_tensor(reference, tmp_path):
    state = {k: v for k, v in reference[1].items() if "resblocks.1.mlp.c_proj" not in k}
    path = _write("state-dict", state, tmp_path)
    with pytest.raises(FarreidError, match="missing.*resblocks.1.mlp.c_proj"):
        create_clip("auto", pretrained=path)


def test_named_backbone_must_agree_with_the_checkpoint(reference, tmp_path):
    path = _write("state-dict", reference[1], tmp_path)
    assert create_clip("test", pretrained=path).spec.name == "test"
    with pytest.raises(CheckpointError, match="model.backbone 'ViT-B/16'.*disagrees with checkpoint"):
        create_clip("ViT-B/16", pretrained=path)
    assert create_clip(str(path)).spec.architecture() == reference[0].spec.architecture()


@pytest.mark.parametrize("safe", [True, False])
def test_hugging_face_directory(safe, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                         hidden_act="gelu", vocab_size=49408, eos_token_id=49407),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, hidden_act="gelu"),
        projection_dim=32,
    )
    transformers.CLIPModel(config).save_pretrained(tmp_path, safe_serialization=safe)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.kind == "hf-directory" and checkpoint.spec.activation == "gelu"
    assert checkpoint.spec.vision.heads == 2 and checkpoint.spec.vision.image_size == 32
    model = create_clip("auto", pretrained=tmp_path, image_size=(64, 32))
    assert model.visual.grid == (8, 4)
