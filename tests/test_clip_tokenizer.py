"""The BPE tokenizer against transformers' CLIPTokenizer built from the same vocabulary."""

import json

import pytest
import torch

from farreid.errors import FarreidError
from farreid.models.clip import ClipTokenizer

SENTENCES = [
    "A photo of a person.",
    "The man   in the RED jacket walks away from the drone!!",
    "it's 5.8 m altitude, 120m distance; don't we'll I'd",
    "naïve café Zürich — ümlaut ß",
    "emoji 🙂 and 日本語のテキスト",
    "tabs\tand\nnewlines",
    "x-ray_image #42 @home (test) [ok] {fine}",
    "",
]


@pytest.fixture(scope="module")
def shipped():
    return ClipTokenizer.from_path()


@pytest.fixture(scope="module")
def hf_files(shipped, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.json").write_text(json.dumps(shipped.encoder))
    merges = sorted(shipped.ranks, key=shipped.ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder


def test_matches_transformers_clip_tokenizer(shipped, hf_files):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.CLIPTokenizer.from_pretrained(hf_files)
    for text in SENTENCES:
        assert [shipped.sot_id, *shipped.encode(text), shipped.eot_id] == theirs(text)["input_ids"], text


def test_hugging_face_files_give_the_same_tokenizer(shipped, hf_files):
    from_hf = ClipTokenizer.from_path(hf_files)
    assert from_hf.vocab_size == shipped.vocab_size == 49408
    assert all(from_hf.encode(t) == shipped.encode(t) for t in SENTENCES)


def test_batch_padding_truncation_and_decode(shipped):
    ids = shipped(["a person", "word " * 100], context_length=16)
    assert ids.shape == (2, 16) and ids.dtype == torch.long
    assert ids[0, :4].tolist() == [shipped.sot_id, 320, 2533, shipped.eot_id] and ids[0, 4:].eq(0).all()
    assert ids[1, -1] == shipped.eot_id and ids[1].argmax() == 15
    assert shipped.decode(shipped.encode("The RED jacket!")) == "the red jacket !"


def test_unreadable_vocabulary_is_a_clear_error(tmp_path):
    bad = tmp_path / "vocab.txt.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(FarreidError, match="cannot read BPE vocabulary"):
        ClipTokenizer.from_path(bad)
