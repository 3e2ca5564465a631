"""SigLIP, the second backbone family: parity with transformers, its tokenizer, and FarReID on it."""

from __future__ import annotations

import pytest
import torch

from _siglip_folder import captions, siglip_folder
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
