"""The backbone registry: names and checkpoints pick their family; records rebuild towers; clear refusals."""

from __future__ import annotations

import pytest
import torch

from farreid.errors import FarreidError
from farreid.models.backbone import (
    BackboneFamily, backbone_family, backbone_record, create_backbone, family_for, named_spec, rebuild_backbone,
    register_family,
)
from farreid.models.clip import CLIP, CLIP_CONFIGS
from farreid.models.siglip import SIGLIP_CONFIGS, SigLIP


def test_a_name_picks_the_family_that_owns_it():
    assert family_for("ViT-B/16").name == "clip" and family_for("siglip-test").name == "siglip"
    assert named_spec("ViT-L/14") is CLIP_CONFIGS["ViT-L/14"] and named_spec("siglip-test") is SIGLIP_CONFIGS["siglip-test"]
    assert named_spec("/some/folder") is None
    assert isinstance(create_backbone("siglip-test"), SigLIP) and isinstance(create_backbone("test"), CLIP)


def test_a_checkpoint_path_picks_the_family_whose_reader_claims_it(tmp_path):
    folder = tmp_path / "siglip"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "siglip"}')
    assert family_for("auto", folder).name == "siglip"
    assert family_for(str(folder)).name == "siglip"
    clip_file = tmp_path / "clip.pt"
    clip_file.write_bytes(b"")
    assert family_for("auto", clip_file).name == "clip"


def test_spec_names_and_family_names_are_unique():
    with pytest.raises(FarreidError, match="reuses clip's spec names \\['test'\\]"):
        register_family(BackboneFamily("other", {"test": CLIP_CONFIGS["test"]}, "farreid.models.clip.family"))
    with pytest.raises(FarreidError, match="registered already"):
        register_family(BackboneFamily("siglip", {}, "farreid.models.siglip.family"))
    with pytest.raises(FarreidError, match="unknown backbone family 'nope'"):
        backbone_family("nope")


@pytest.mark.parametrize("name", ["test", "siglip-test"])
def test_a_record_rebuilds_the_same_architecture(name):
    towers = create_backbone(name, image_size=(64, 32))
    weights = towers.state_dict()
    rebuilt = rebuild_backbone(backbone_record(towers), weights, image_size=(64, 32))
    assert type(rebuilt) is type(towers) and rebuilt.spec == towers.spec
    rebuilt.load_state_dict(weights)
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.encode_image(images), towers.encode_image(images), rtol=0, atol=0)


def test_records_that_are_not_sane_are_refused():
    towers = create_backbone("siglip-test")
    record = backbone_record(towers)
    with pytest.raises(ValueError, match="unknown family 'vit'"):
        rebuild_backbone({**record, "family": "vit"}, {}, image_size=(64, 64))
    with pytest.raises(ValueError, match="exactly 'family' and 'spec'"):
        rebuild_backbone({**record, "extra": 1}, {}, image_size=(64, 64))
    bad = {**record["spec"], "vision": {**record["spec"]["vision"], "width": 10**9}}
    with pytest.raises(ValueError, match="plausible size"):
        rebuild_backbone({"family": "siglip", "spec": bad}, {}, image_size=(64, 64))


def test_a_siglip_name_with_a_checkpoint_that_is_not_a_siglip_folder_is_one_clear_error(tmp_path):
    clip_file = tmp_path / "clip.pt"
    clip_file.write_bytes(b"")
    with pytest.raises(FarreidError, match="clip.pt is not a SigLIP folder.*'siglip-test' is a SigLIP architecture"):
        create_backbone("siglip-test", pretrained=clip_file)
