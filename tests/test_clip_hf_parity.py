"""Our towers against Hugging Face transformers' CLIP, given the same (converted) random weights."""

import pytest
import torch

from farreid.models.clip import ClipTokenizer, create_clip

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(3)
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                         hidden_act="quick_gelu", vocab_size=49408, max_position_embeddings=77,
                         bos_token_id=49406, eos_token_id=49407),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, hidden_act="quick_gelu"),
        projection_dim=32,
    )
    hf = transformers.CLIPModel(config).eval()
    folder = tmp_path_factory.mktemp("hf_clip")
    hf.save_pretrained(folder)
    ours = create_clip("auto", pretrained=folder).eval()
    return hf, ours


def _submodel(cls, config, hf, prefix):
    model = cls(config).eval()
    model.load_state_dict({k[len(prefix):]: v for k, v in hf.state_dict().items() if k.startswith(prefix)})
    return model


@pytest.mark.parametrize("size", [(32, 32), (64, 32)])
def test_image_tower_matches_clip_vision_model(pair, size):
    hf, ours = pair
    vision = _submodel(transformers.CLIPVisionModel, hf.config.vision_config, hf, "vision_model.")
    images = torch.randn(3, 3, *size)
    with torch.no_grad():
        theirs = vision(pixel_values=images, interpolate_pos_encoding=size != (32, 32))
        mine = ours.visual(images, return_blocks=(-1,))
        assert (theirs.last_hidden_state - mine.blocks[-1]).abs().max() <= 1e-4
        assert (theirs.pooler_output - mine.pooled).abs().max() <= 1e-4
        assert (hf.visual_projection(theirs.pooler_output) - mine.projected).abs().max() <= 1e-4


def test_text_tower_matches_clip_text_model(pair):
    hf, ours = pair
    text = _submodel(transformers.CLIPTextModel, hf.config.text_config, hf, "text_model.")
    ids = ClipTokenizer.from_path()(["a man in a red jacket", "a drone view of a person walking far away", ""])
    with torch.no_grad():
        theirs = text(input_ids=ids)
        hidden = ours.text.hidden_states(ours.text.token_embedding(ids))
        assert (theirs.last_hidden_state - hidden).abs().max() <= 1e-4
        assert (hf.text_projection(theirs.pooler_output) - ours.encode_text(ids)).abs().max() <= 1e-4
