"""Frames: a decompression bomb is an unreadable frame naming the file in every command that decodes frames; a
16-bit PNG is converted by bit depth (never solid white); a tracklet whose name is not UTF-8 is refused, naming
it, before anything is embedded."""

import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from _hardening import cli_error
from _inference_data import TINY_OVERRIDES, one_thread, png_tracklet, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.data.decode import decode_frame
from farreid.eval.pictures import _frame
from farreid.inference import ReIDModel
from farreid.inference.extract import extract_to_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.fixture(scope="module")
def gallery(trained, tmp_path_factory):
    """A small gallery feature set extracted with the tiny model (for search)."""
    root = tmp_path_factory.mktemp("gallery")
    for i in range(3):
        png_tracklet(root / "tracklets" / f"g{i}", frames=3, seed=i)
    model = ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="fp32")
    extract_to_store(model, root / "tracklets", root / "features")
    return root / "features"


def write_bomb(path):
    """A PNG whose header claims 30000 x 30000 pixels (5x PIL's decompression-bomb limit), with almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def _data_copy_with_bomb(trained, tmp_path, split):
    """The tiny data set with every frame of `split` a bomb (whatever frames sampling picks, it meets one)."""
    data = tmp_path / "data"
    shutil.copytree(trained.data, data)
    for frame in (data / split).rglob("*.jpg"):
        write_bomb(frame)
    return data, data / split


def _tracklets_with_bomb(tmp_path):
    png_tracklet(tmp_path / "q" / "t0", frames=3)
    return tmp_path / "q", write_bomb(tmp_path / "q" / "t0" / "0001.png")


BOMB_COMMANDS = {
    "extract": lambda t, g, tmp: (lambda q, bomb: (["extract", "--checkpoint", t.checkpoint, "-i", q, "-o", tmp / "out"], bomb))(
        *_tracklets_with_bomb(tmp)),
    "search": lambda t, g, tmp: (lambda q, bomb: (["search", "-g", g, "-q", q, "--checkpoint", t.checkpoint, "-o", tmp / "s"], bomb))(
        *_tracklets_with_bomb(tmp)),
    "eval": lambda t, g, tmp: (lambda data, bomb: (["eval", "--checkpoint", t.checkpoint, "-o", tmp / "e",
                                                    f"data.root={data}", "eval.show_queries=0"], bomb))(
        *_data_copy_with_bomb(t, tmp, "case1_aerial_to_ground")),
    "eval, frames decoded in a worker process": lambda t, g, tmp: (lambda data, bomb: (
        ["eval", "--checkpoint", t.checkpoint, "-o", tmp / "e", f"data.root={data}", "eval.show_queries=0",
         "data.workers=1"], bomb))(*_data_copy_with_bomb(t, tmp, "case2_ground_to_aerial")),
    "train": lambda t, g, tmp: (lambda data, bomb: (["train", f"out_dir={tmp / 'runs'}", f"data.root={data}",
                                                     *TINY_OVERRIDES], bomb))(*_data_copy_with_bomb(t, tmp, "train")),
}


@pytest.mark.parametrize("command", BOMB_COMMANDS)
def test_decompression_bomb_is_an_unreadable_frame_naming_the_file(command, trained, gallery, tmp_path, capsys):
    argv, bomb = BOMB_COMMANDS[command](trained, gallery, tmp_path)
    line = cli_error(argv, capsys)
    assert f"unreadable image {bomb}" in line and "decompression bomb" in line  # `bomb`: the file, or its split


def _grey16(tmp_path):
    levels = (np.arange(64 * 32, dtype=np.uint32).reshape(64, 32) * 31).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode == "I;16"
    return path, (levels >> 8).astype(np.uint8)


DECODERS = {
    "frame files (train, eval, extract, search)": lambda path: decode_frame(str(path), (64, 32)),
    "PIL images handed to ReIDModel": lambda path: __import__("farreid.inference.inputs", fromlist=["_pil_frame"])
    ._pil_frame(Image.open(path), (64, 32), "bicubic"),
    "ranked-result pictures": lambda path: np.asarray(_frame(str(path), (32, 64))),
}


@pytest.mark.parametrize("decoder", DECODERS)
def test_16_bit_png_is_converted_by_bit_depth(decoder, tmp_path):
    path, expected = _grey16(tmp_path)
    rgb = DECODERS[decoder](path)
    assert rgb.shape == (64, 32, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb[..., 0] == rgb[..., 2]).all() and rgb.mean() < 200  # grey levels, not solid white


def test_float_frames_are_refused_rather_than_guessed(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(path)
    with pytest.raises(Exception, match=f"unreadable image {path}.*floating-point"):
        decode_frame(str(path), (8, 8))


def _non_utf8_tracklets(tmp_path):
    root = tmp_path / "q"
    png_tracklet(root / "ok", frames=2)
    png_tracklet(root / os.fsdecode(b"caf\xe9_latin1"), frames=2)
    return root


UTF8_COMMANDS = {
    "extract": lambda t, g, tmp: ["extract", "--checkpoint", t.checkpoint, "-i", _non_utf8_tracklets(tmp), "-o", tmp / "out"],
    "search": lambda t, g, tmp: ["search", "-g", g, "-q", _non_utf8_tracklets(tmp), "--checkpoint", t.checkpoint,
                                 "-o", tmp / "s"],
}


@pytest.mark.parametrize("command", UTF8_COMMANDS)
def test_non_utf8_tracklet_names_are_refused_before_embedding(command, trained, gallery, tmp_path, capsys):
    line = cli_error(UTF8_COMMANDS[command](trained, gallery, tmp_path), capsys)
    assert "caf\\udce9_latin1" in line and "not a UTF-8 name" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.safetensors"))
