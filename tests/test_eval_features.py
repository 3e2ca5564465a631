import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from _eval_data import challenge_protocols
from farreid.errors import FarreidError
from farreid.eval import (
    FeatureSet,
    extract_features,
    load_feature_set,
    load_protocols,
    read_feature_metadata,
    save_feature_set,
    save_protocol,
)
from farreid.utils.device import Precision


def test_feature_set_round_trip(tmp_path):
    fs = FeatureSet(
        torch.randn(3, 5), ["a,1", 'b "q"', "c"], [4, -1, 7], [0, 1, 2], ["aerial", "ground", "aerial"],
        [("x/1.jpg", "x/2.jpg"), (), ("z,1.jpg",)], altitude=[20.5, np.nan, 80.0], distance=[np.nan, 3.0, 40.0],
    )
    save_feature_set(fs, tmp_path / "set", metadata={"model": "toy", "flip": True})
    back = load_feature_set(tmp_path / "set")
    torch.testing.assert_close(back.features, fs.features)
    assert back.names == fs.names and back.platforms == fs.platforms and back.frames == fs.frames
    np.testing.assert_array_equal(back.pids, fs.pids)
    np.testing.assert_array_equal(back.camids, fs.camids)
    np.testing.assert_array_equal(back.altitude, fs.altitude)
    np.testing.assert_array_equal(back.distance, fs.distance)
    assert read_feature_metadata(tmp_path / "set") == {"model": "toy", "flip": "True"}
    assert not back.labelled and back.subset([0, 2]).labelled


@dataclass
class Track:
    name: str
    pid: int
    camid: int
    platform: str
    frames: tuple
    altitude: float | None = None


def test_from_tracklet_records():
    records = [Track("t0", 1, 0, "ground", ("a",)), Track("t1", 2, 1, "aerial", (), 30.0)]
    fs = FeatureSet.from_tracklets(torch.ones(2, 3), records)
    assert fs.names == ["t0", "t1"] and fs.frames == [("a",), ()]
    assert math.isnan(fs.altitude[0]) and fs.altitude[1] == 30.0 and math.isnan(fs.distance[1])


def test_protocol_store_round_trip_in_case_order(tmp_path):
    protocols = challenge_protocols(nq=4, ng=6)
    for p in reversed(protocols):
        save_protocol(p, tmp_path)
    loaded = load_protocols(tmp_path)
    assert [p.name for p in loaded] == ["A2G", "G2A", "A2A"]
    assert [p.name for p in load_protocols(tmp_path, ["A2A"])] == ["A2A"]
    with pytest.raises(FarreidError, match="protocol.s. XYZ"):
        load_protocols(tmp_path, ["XYZ"])


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "features.safetensors").unlink(), "features not found"),
        (lambda d: (d / "meta.csv").unlink(), "metadata not found"),
        (lambda d: (d / "features.safetensors").write_bytes(b"not a safetensors file"), "not a readable safetensors"),
        (lambda d: (d / "meta.csv").write_text("name,pid\nx,1\n"), "missing column"),
        (lambda d: (d / "meta.csv").write_text((d / "meta.csv").read_text().replace(",0,", ",zero,", 1)), "line 2"),
        (lambda d: (d / "meta.csv").write_text((d / "meta.csv").read_text().rsplit("\n", 2)[0] + "\n"),
         "metadata rows"),
    ],
)
def test_broken_feature_folders_give_one_clear_error(tmp_path, breakage, message):
    fs = FeatureSet(torch.randn(2, 3), ["a", "b"], [0, 1], [0, 0], ["ground", "ground"])
    save_feature_set(fs, tmp_path)
    breakage(tmp_path)
    with pytest.raises(FarreidError, match=message):
        load_feature_set(tmp_path)


def toy_embed(batch):
    """Mean over frames and pixels of a clip whose values encode position: left/right halves differ."""
    clip = batch["clip"]  # (B, T, 3, H, W)
    mask = batch.get("mask", torch.ones(clip.shape[:2], dtype=torch.bool)).float()
    left = clip[..., : clip.shape[-1] // 2].mean(dim=(2, 3, 4))  # (B, T)
    right = clip[..., clip.shape[-1] // 2 :].mean(dim=(2, 3, 4))
    per_frame = torch.stack([left, right, torch.ones_like(left)], dim=-1)  # (B, T, 3)
    return (per_frame * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def make_clip(value_left, value_right, t=2):
    clip = torch.empty(t, 3, 4, 4)
    clip[..., :2], clip[..., 2:] = value_left, value_right
    return clip


def test_flip_averages_the_flipped_clip():
    batch = {"clip": torch.stack([make_clip(1.0, 3.0)]), "index": torch.tensor([0])}
    plain = extract_features(toy_embed, [batch], flip=False, normalize=False, num_items=1)
    flipped = extract_features(toy_embed, [batch], flip=True, normalize=False, num_items=1)
    torch.testing.assert_close(plain, torch.tensor([[1.0, 3.0, 1.0]]))
    torch.testing.assert_close(flipped, torch.tensor([[2.0, 2.0, 1.0]]))
    normed = extract_features(toy_embed, [batch], Precision(torch.device("cpu")), flip=True, num_items=1)
    torch.testing.assert_close(normed.norm(dim=1), torch.ones(1))


def test_dense_chunks_are_weighted_by_real_frames():
    # tracklet 0 = 3 real frames of value 1 (chunk 1, T=3) + 1 real frame of value 5 (chunk 2, padded)
    chunk1 = make_clip(1.0, 1.0, t=3)
    chunk2 = torch.cat([make_clip(5.0, 5.0, t=1), torch.zeros(2, 3, 4, 4)])
    batches = [
        {"clip": torch.stack([chunk1, make_clip(2.0, 2.0, t=3)]), "mask": torch.ones(2, 3, dtype=torch.bool),
         "index": torch.tensor([0, 1])},
        {"clip": chunk2[None], "mask": torch.tensor([[True, False, False]]), "index": torch.tensor([0])},
    ]
    out = extract_features(toy_embed, batches, flip=False, normalize=False, num_items=2)
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0, 1.0], [2.0, 2.0, 1.0]]))  # (3*1 + 1*5) / 4 = 2


def test_extraction_errors_are_clear():
    batch = {"clip": torch.zeros(1, 2, 3, 4, 4), "index": torch.tensor([0])}
    with pytest.raises(FarreidError, match="1 of 2 tracklets got no embedding"):
        extract_features(toy_embed, [batch], num_items=2)
    with pytest.raises(FarreidError, match="outside"):
        extract_features(toy_embed, [{**batch, "index": torch.tensor([5])}], num_items=2)
    with pytest.raises(FarreidError, match="returned shape"):
        extract_features(lambda b: torch.ones(3, 2), [batch], num_items=1)
    with pytest.raises(FarreidError, match="needs num_items"):
        extract_features(toy_embed, [batch])
    with pytest.raises(FarreidError, match="no 'index'"):
        extract_features(toy_embed, [{"clip": batch["clip"]}], num_items=1)


def test_extraction_uses_loader_dataset_length():
    class Loader(list):
        dataset = [0, 1]

    batches = Loader([{"clip": torch.rand(2, 2, 3, 4, 4), "index": torch.tensor([1, 0])}])
    assert extract_features(toy_embed, batches).shape == (2, 3)
