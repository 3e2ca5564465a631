"""Files we read: bytes that are not UTF-8, a manifest without shards, garbage weight files, a checkpoint whose
recorded architecture is wrong or absurd, a TorchScript-looking archive whose class takes arguments. Each is one
message naming the file and what is wrong, in every command that reads it."""

import copy
import zipfile

import pytest
import torch

from _eval_data import challenge_protocols
from _hardening import cli_error
from _inference_data import TINY_OVERRIDES, one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.eval import save_protocol

LATIN1 = "caf\xe9".encode("latin-1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.fixture
def features(tmp_path):
    root = tmp_path / "features"
    for p in challenge_protocols(nq=4, ng=8):
        save_protocol(p, root)
    return root


def _latin1_yaml(tmp, f, t):
    path = tmp / "recipe.yaml"
    path.write_bytes(b"name: " + LATIN1 + b"\n")
    return path


def _latin1_meta(tmp, f, t):
    path = f / "A2G" / "query" / "meta.csv"
    path.write_bytes(path.read_bytes().replace(b"A2G_q0001", b"A2G_q" + LATIN1))
    return path


def _latin1_csv(tmp, f, t):
    path = tmp / "submission.csv"
    path.write_bytes(b"row_id,case,query_tracklet,ranked_gallery_tracklets\n1,Case 1: Aerial to Ground," + LATIN1 + b",x\n")
    return path


def _manifest_without_shards(tmp, f, t):
    folder = tmp / "sharded"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "farreid-features/sharded-1", "rows": 0, "dim": 16}')
    (folder / "meta.csv").write_text("name,pid,camid,platform,altitude,distance,frames\n")
    return folder / "manifest.json"


def _garbage(suffix, data=b"\x00\x01garbage, not weights" * 10):
    def make(tmp, f, t):
        path = tmp / f"weights{suffix}"
        path.write_bytes(data)
        return path
    return make


def _torchscript_class_with_arguments(tmp, f, t):
    """Looks like a TorchScript archive; its data.pkl builds a `__torch__` class with constructor arguments."""
    path = tmp / "scripted.pt"
    data = b"\x80\x02c__torch__.Model\nModel\nK\x01K\x02\x86R."  # protocol 2: GLOBAL, 1, 2, TUPLE2, REDUCE = Model(1, 2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scripted/data.pkl", data)
        archive.writestr("scripted/constants.pkl", b"\x80\x02).")
        archive.writestr("scripted/code/__torch__/model.py", "def forward(self): pass\n")
    return path


def _checkpoint_with_spec(change):
    def make(tmp, f, t):
        state = torch.load(t.checkpoint, map_location="cpu", weights_only=True)
        state = copy.deepcopy(state)
        change(state["model_info"]["backbone"]["spec"])
        path = tmp / "edited.pt"
        torch.save(state, path)
        return path
    return make


def _train(path, t, tmp):
    return ["train", f"out_dir={tmp / 'runs'}", f"data.root={t.data}", *TINY_OVERRIDES, f"model.pretrained={path}"]


CASES = {
    "config: non-UTF-8 recipe": (_latin1_yaml, lambda p, f, t, tmp: ["config", "-c", p], "not UTF-8"),
    "train: non-UTF-8 recipe": (_latin1_yaml, lambda p, f, t, tmp: ["train", "-c", p], "not UTF-8"),
    "eval: non-UTF-8 meta.csv": (_latin1_meta, lambda p, f, t, tmp: ["eval", "-f", f, "-o", tmp / "e"], "not UTF-8"),
    "search: non-UTF-8 meta.csv": (_latin1_meta, lambda p, f, t, tmp: [
        "search", "-g", f / "A2G" / "gallery", "-q", f / "A2G" / "query", "-o", tmp / "s"], "not UTF-8"),
    "eval: non-UTF-8 --score-csv": (_latin1_csv, lambda p, f, t, tmp: ["eval", "-f", f, "--score-csv", p], "not UTF-8"),
    "eval: manifest without shards": (_manifest_without_shards, lambda p, f, t, tmp: [
        "eval", "--query-features", p.parent, "--gallery-features", p.parent, "-o", tmp / "e"], "'shards'"),
    "search: manifest without shards": (_manifest_without_shards, lambda p, f, t, tmp: [
        "search", "-g", p.parent, "-q", f / "A2G" / "query", "-o", tmp / "s"], "'shards'"),
    "train: garbage .safetensors as model.pretrained": (
        _garbage(".safetensors"), lambda p, f, t, tmp: _train(p, t, tmp), "cannot read"),
    "train: garbage .pt as model.pretrained": (_garbage(".pt"), lambda p, f, t, tmp: _train(p, t, tmp), "cannot read"),
    "train: empty pickle as model.pretrained": (  # torch.load raises IndexError (pop from empty list) on it
        _garbage(".pt", b"\x80\x02."), lambda p, f, t, tmp: _train(p, t, tmp), "cannot read"),
    "train: TorchScript class with arguments": (
        _torchscript_class_with_arguments, lambda p, f, t, tmp: _train(p, t, tmp), "no CLIP ViT image tower"),
    "extract: backbone spec with an extra key": (
        _checkpoint_with_spec(lambda s: s.update(extra=1)), lambda p, f, t, tmp: [
            "extract", "--checkpoint", p, "-i", t.data, "-o", tmp / "x"], "unknown key"),
    "extract: absurd backbone spec width": (
        _checkpoint_with_spec(lambda s: s["vision"].update(width=10**9)), lambda p, f, t, tmp: [
            "extract", "--checkpoint", p, "-i", t.data, "-o", tmp / "x"], "plausible size"),
    "eval: backbone spec that does not match the weights": (
        _checkpoint_with_spec(lambda s: s["vision"].update(layers=40)), lambda p, f, t, tmp: [
            "eval", "--checkpoint", p, "-o", tmp / "e"], "does not match the stored weights"),
    "export: backbone spec with a text string": (
        _checkpoint_with_spec(lambda s: s["text"].update(width="wide")), lambda p, f, t, tmp: [
            "export", "onnx", "--checkpoint", p, "-o", tmp / "m.onnx"], "text.width"),
}


@pytest.mark.parametrize("make, argv, words", CASES.values(), ids=CASES.keys())
def test_a_bad_file_is_one_message_naming_it(make, argv, words, trained, features, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path, features, trained)
    line = cli_error(argv(path, features, trained, tmp_path), capsys)
    assert words in line
    assert str(path) in line or str(path.parent) in line or "model_info.backbone" in line
