"""farreid extract (sharded, resumable, atomic) and farreid search (streamed exact top-k, re-ranking, pictures)."""

import csv
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from _inference_data import one_thread, tiny_trained  # noqa: F401  (autouse fixture)
from farreid.cli import app
from farreid.data import build_dataset
from farreid.errors import FarreidError
from farreid.eval import FeatureSet, load_feature_set, load_protocols, rerank_feature_chunks
from farreid.eval.features import feature_shape, iter_feature_chunks, read_feature_metadata, read_meta_rows
from farreid.inference import ReIDModel
from farreid.inference.extract import extract_split
from farreid.inference.mot import tracklets_from_mot
from farreid.inference.search import search_gallery

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.fixture(scope="module")
def model(trained):
    return ReIDModel.from_checkpoint(trained.checkpoint, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def features(trained, tmp_path_factory):
    """`farreid extract` of the synthetic test protocols, 5 tracklets a shard."""
    out = tmp_path_factory.mktemp("features")
    result = runner.invoke(app, ["extract", "--checkpoint", str(trained.checkpoint), "-i", str(trained.data), "-d", "detreidx",
                                 "-o", str(out), "--shard-size", "5", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    return out


def test_extract_writes_sharded_sets_that_eval_reads(trained, model, features):
    gallery = features / "A2G" / "gallery"
    assert sorted(p.name for p in gallery.iterdir()) == [
        "extract.json", "features-00000.safetensors", "features-00001.safetensors", "features-00002.safetensors",
        "manifest.json", "meta.csv"]
    assert feature_shape(gallery) == (12, model.dim)
    assert read_feature_metadata(gallery)["checkpoint"] == str(trained.checkpoint)
    tracklets = build_dataset("detreidx", trained.data, protocol="A2G", load_train=False).protocols["A2G"].gallery
    loaded = load_feature_set(gallery)
    np.testing.assert_allclose(loaded.features.numpy(), model.embed_tracklets(tracklets), atol=1e-6)
    assert loaded.names == [t.name for t in tracklets] and loaded.pids.tolist() == tracklets.pids
    with (gallery / "meta.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["num_frames"]) for r in rows] == [len(t.frames) for t in tracklets]
    # streamed reading crosses shard boundaries without changing a value
    torch.testing.assert_close(torch.cat(list(iter_feature_chunks(gallery, rows=4))), loaded.features)
    assert read_meta_rows(gallery, [11, 3])[11]["name"] == tracklets[11].name
    assert [p.name for p in load_protocols(features)] == ["A2G", "G2A", "A2A"]
    result = runner.invoke(app, ["eval", "-f", str(features), "-o", str(features.parent / "eval"), "eval.show_queries=0"])
    assert result.exit_code == 0 and "overall (pooled)" in result.output


def test_an_interrupted_extraction_resumes_where_it_stopped(trained, model, tmp_path, monkeypatch):
    tracklets = build_dataset("detreidx", trained.data, protocol="G2A", load_train=False).protocols["G2A"].gallery
    folder = tmp_path / "g"
    calls = {"n": 0}
    real = ReIDModel.embed_tracklets

    def crash_on_second_shard(self, part, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, part, **kw)

    monkeypatch.setattr(ReIDModel, "embed_tracklets", crash_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        extract_split(model, tracklets, folder, shard_size=4)
    monkeypatch.undo()
    assert (folder / "features-00000.safetensors").is_file() and not (folder / "manifest.json").exists()
    with pytest.raises(FarreidError, match="the extraction did not finish"):
        load_feature_set(folder)
    resumed = extract_split(model, tracklets, folder, shard_size=4)
    assert (resumed.kept, resumed.embedded) == (1, 2)
    np.testing.assert_allclose(load_feature_set(folder).features.numpy(), model.embed_tracklets(tracklets), atol=1e-6)
    assert extract_split(model, tracklets, folder, shard_size=4).kept == 3  # complete: nothing to do
    with pytest.raises(FarreidError, match="other settings or tracklets.*flip"):
        extract_split(model.with_settings(flip=False), tracklets, folder, shard_size=4)
    again = extract_split(model.with_settings(flip=False), tracklets, folder, shard_size=4, overwrite=True)
    assert again.embedded == 3


def _flipped_copy(src, dst, skip_first=True):
    """Another view of the same person: the tracklet's later frames, mirrored, written as PNG."""
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir())[1 if skip_first else 0:]:
        Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dst / f"{path.stem}.png")
    return dst


def test_extract_then_search_finds_the_identity(trained, features, tmp_path):
    gallery = features / "A2G" / "gallery"
    target = next((trained.data / "case1_aerial_to_ground" / "gallery" / "0005").iterdir())
    query = _flipped_copy(target, tmp_path / "query" / "person")
    out = tmp_path / "results"
    result = runner.invoke(app, ["search", "-g", str(gallery), "-q", str(query), "-k", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "ranking.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    assert rows[0]["tracklet"] == target.name and rows[0]["pid"] == "5" and float(rows[0]["cosine"]) > 0.95
    assert "rank  cosine  tracklet" in result.output and target.name in result.output
    assert len(list((out / "pictures").glob("*.png"))) == 1


def test_streamed_search_equals_dense_ranking_and_reranking(features, model):
    gallery = features / "A2G" / "gallery"
    g = load_feature_set(gallery)
    q = load_feature_set(features / "A2G" / "query")
    dense = torch.topk(q.features @ g.features.T, 5, dim=1)
    for backend in ("torch", "faiss"):
        found = search_gallery(q, gallery, 5, backend=backend, chunk_rows=3)
        assert [[h.index for h in hits] for hits in found.hits] == dense.indices.tolist()
        np.testing.assert_allclose([[h.score for h in hits] for hits in found.hits], dense.values, atol=1e-5)
    assert found.hits[0][0].name == g.names[dense.indices[0, 0]] and found.hits[0][0].pid == g.pids[dense.indices[0, 0]]
    reranked = search_gallery(q, gallery, 3, rerank=_params())
    block = torch.cat([b for _, b in rerank_feature_chunks(q.features, g.features, 4, 2, 0.3)])
    assert [[h.index for h in hits] for hits in reranked.hits] == torch.topk(block, 3, dim=1, largest=False).indices.tolist()
    with pytest.raises(FarreidError, match="has 12 rows, more than the limit of 10"):
        search_gallery(q, gallery, 3, rerank=_params(), rerank_max_gallery=10)
    wrong = FeatureSet(torch.randn(1, 7), ["x"], [-1], [0], ["ground"])
    with pytest.raises(FarreidError, match="dimension 7 but the gallery"):
        search_gallery(wrong, gallery)


def _params():
    from farreid.config.schema import RerankConfig

    return RerankConfig(enabled=True, k1=4, k2=2, lambda_value=0.3)


def test_from_mot_footage_to_extract_and_search(trained, tmp_path):
    """Own footage: MOT tracks cut into a gallery-only folder layout, embedded, searched with a query tracklet."""
    frames = tmp_path / "img1"
    frames.mkdir()
    people = {1: (200, 40, 40), 2: (40, 40, 200), 3: (40, 180, 60)}
    lines = []
    for f in range(1, 9):
        img = np.full((120, 200, 3), 90, np.uint8)
        for tid, color in people.items():
            x = 20 + 55 * (tid - 1) + 2 * f
            img[20:100, x : x + 30] = color
            img[20:40, x + 8 : x + 22] = (230, 190, 160)  # a head
            lines.append(f"{f},{tid},{x},20,30,80,1,-1,-1,-1")
        Image.fromarray(img).save(frames / f"{f:06d}.png")
    (tmp_path / "gt.txt").write_text("\n".join(lines) + "\n")
    layout = tmp_path / "footage"
    tracklets_from_mot(tmp_path / "gt.txt", layout, frames_dir=frames, max_len=8, min_len=2, camid=0)
    out = tmp_path / "feats"
    result = runner.invoke(app, ["extract", "--checkpoint", str(trained.run), "-i", str(layout), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert feature_shape(out / "gallery") == (3, 192)
    query = _flipped_copy(next((layout / "gallery" / "0002").iterdir()), tmp_path / "q2", skip_first=False)
    result = runner.invoke(app, ["search", "-g", str(out / "gallery"), "-q", str(query), "-k", "3", "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "r" / "ranking.csv").open() as fh:
        assert next(csv.DictReader(fh))["pid"] == "2"


def test_extract_errors_are_clear(trained, tmp_path):
    result = runner.invoke(app, ["extract", "--checkpoint", str(trained.checkpoint), "-i", str(tmp_path / "none"), "-o", str(tmp_path)])
    assert result.exit_code != 0 and "input folder" in str(result.exception)
    empty = tmp_path / "q"
    empty.mkdir()
    shutil.copytree(trained.data / "train", tmp_path / "layout" / "train")
    result = runner.invoke(app, ["extract", "--checkpoint", str(trained.checkpoint), "-i", str(tmp_path / "layout"), "-o", str(tmp_path / "o")])
    assert "only a train/ split; pass --train" in str(result.exception)
