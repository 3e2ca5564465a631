"""One definition each: the junk rule, the embedding path of validation and test, test clips, the evaluation
options, and one read of a checkpoint file."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset
from typer.testing import CliRunner

from _eval_data import challenge_protocols
from _inference_data import one_thread, png_tracklet, tiny_trained  # noqa: F401  (autouse fixture)
from engine_toys import ClipSet, ToyData, ToyReID
from farreid.cli import app
from farreid.config.schema import EvalConfig
from farreid.data import ClipDataset, Tracklet, collate_clips, eval_clips
from farreid.engine.distributed import DistContext
from farreid.engine.validate import embed_dataset
from farreid.errors import FarreidError
from farreid.eval import embedding_sums, extract_features, save_protocol
from farreid.eval.ranking import JunkRule
from farreid.inference.inputs import MemoryClips, MemoryTracklet
from farreid.utils.device import Precision

CPU = Precision(torch.device("cpu"), "fp32")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_trained(tmp_path_factory)


@pytest.mark.parametrize("name", ["camera", "tracklet"])
def test_the_junk_rule_marks_the_same_pairs_one_at_a_time_and_in_bulk(name):
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(0, 4, 15), rng.integers(0, 4, 30)
    q_cams, g_cams = rng.integers(0, 3, 15), rng.integers(0, 3, 30)
    g_names = [f"t{i % 12}" for i in range(30)]
    q_names = [f"t{i}" for i in rng.integers(0, 12, 15)]
    rule = JunkRule(name)
    rel = rule.relevant_items(q_pids, g_pids, q_cams, g_cams, q_names, g_names)
    bulk = set()
    for qi in range(15):
        for k in range(rel.ptr[qi], rel.ptr[qi + 1]):
            if rel.junk[k]:
                bulk.add((qi, int(rel.gallery[k])))
    single = {(qi, gi) for qi in range(15) for gi in range(30)
              if rule.is_junk(q_pids[qi], q_cams[qi], q_names[qi], g_pids[gi], g_cams[gi], g_names[gi])}
    assert bulk == single and bulk


def test_an_unknown_junk_rule_is_one_clear_error():
    with pytest.raises(FarreidError, match="unknown junk rule 'pid'; choose one of camera, tracklet"):
        JunkRule("pid")


def _toy_model() -> ToyReID:
    torch.manual_seed(0)
    return ToyReID(6).eval()


def test_validation_embeds_as_test_extraction_does():
    model, data = _toy_model(), ClipSet(ToyData(4, per_id=3, seed=1))
    for flip in (False, True):
        features, pids, camids = embed_dataset(model, data, EvalConfig(flip=flip, batch_size=5), precision=CPU,
                                               ctx=DistContext())
        loader = DataLoader(data, batch_size=3)
        expected = extract_features(lambda b: model.embed(b["clip"], model.prompt_keys(b), b["mask"]), loader, CPU,
                                    flip=flip)
        torch.testing.assert_close(features, expected, atol=1e-6, rtol=0)
        assert pids.tolist() == data.data.pids and camids.tolist() == data.data.camids
    flipped = embed_dataset(model, data, EvalConfig(flip=True), precision=CPU, ctx=DistContext())[0]
    plain = embed_dataset(model, data, EvalConfig(flip=False), precision=CPU, ctx=DistContext())[0]
    assert (flipped - plain).abs().max() > 1e-3  # eval.flip reaches validation


def test_shares_of_the_processes_add_up_to_one_pass():
    model, data = _toy_model(), ClipSet(ToyData(4, per_id=3, seed=2))
    embed = lambda b: model.embed(b["clip"], model.prompt_keys(b), b["mask"])  # noqa: E731
    n = len(data)
    shares = [embedding_sums(embed, DataLoader(Subset(data, part), batch_size=2), n, CPU, labels=("pid",))
              for part in (range(0, 5), range(5, n))]
    whole = embedding_sums(embed, DataLoader(data, batch_size=4), n, CPU, labels=("pid",))
    total = shares[0] + shares[1]
    torch.testing.assert_close(total.features(), whole.features(), atol=1e-6, rtol=0)
    assert total.labels["pid"].tolist() == whole.labels["pid"].tolist() == data.data.pids
    with pytest.raises(FarreidError, match="7 of 12 tracklets got no embedding"):
        shares[0].features()


def test_eval_clips_are_dense_when_asked(tmp_path):
    from farreid.config import load_config

    frames = [png_tracklet(tmp_path / f"t{i}", frames=n) for i, n in enumerate((3, 7))]
    tracklets = [Tracklet(tuple(str(p) for p in f), i, 0, "ground", f"t{i}") for i, f in enumerate(frames)]
    data = load_config(None, ["data.test_frames=4"]).data
    sampled, dense = eval_clips(tracklets, data, (32, 16)), eval_clips(tracklets, data, (32, 16), dense=True)
    assert sampled.sampling == data.test_sampling and len(sampled) == sampled.num_tracklets == 2
    assert dense.sampling == "all" and len(dense) == 3 and dense.num_tracklets == 2  # 7 frames = 2 chunks of 4


def test_in_memory_clips_are_the_clip_dataset_s_items(tmp_path):
    paths = png_tracklet(tmp_path / "p", frames=5)
    on_disk = ClipDataset([Tracklet(tuple(str(p) for p in paths), -1, 0, "ground", "p")], (64, 32), 4, "all")
    frames = torch.stack([on_disk.read_frames(on_disk.tracklets[0], np.array([i]))[0] for i in range(5)])
    in_memory = MemoryClips([MemoryTracklet(frames)], (64, 32), 4, "all")
    assert isinstance(in_memory, ClipDataset) and len(in_memory) == len(on_disk) == 2
    for a, b in zip(collate_clips([on_disk[0], on_disk[1]]).items(), collate_clips([in_memory[0], in_memory[1]]).items()):
        assert a[0] == b[0] and torch.equal(a[1].nan_to_num(), b[1].nan_to_num()), a[0]


def test_search_takes_re_ranking_from_the_config_with_checked_overrides(tmp_path, monkeypatch):
    import farreid.inference.search as search_module

    save_protocol(challenge_protocols(seed=5, nq=3, ng=12)[0], tmp_path / "f")
    seen = {}
    real = search_module.search_gallery

    def spy(*args, **kwargs):
        seen["rerank"] = kwargs["rerank"]
        return real(*args, **kwargs)

    monkeypatch.setattr(search_module, "search_gallery", spy)
    base = ["search", "-g", str(tmp_path / "f" / "A2G" / "gallery"), "-q", str(tmp_path / "f" / "A2G" / "query"),
            "-o", str(tmp_path / "s"), "--pictures", "0"]
    result = CliRunner().invoke(app, [*base, "--k2", "3", "eval.rerank.enabled=true", "eval.rerank.k1=7"])
    assert result.exit_code == 0, result.output
    assert seen["rerank"] == replace(EvalConfig().rerank, enabled=True, k1=7, k2=3)
    result = CliRunner().invoke(app, [*base, "--rerank"])
    assert result.exit_code == 0 and seen["rerank"] == replace(EvalConfig().rerank, enabled=True)
    bad = CliRunner().invoke(app, [*base, "--k1", "0"])
    assert isinstance(bad.exception, FarreidError) and str(bad.exception) == "--k1 = 0 must be > 0"


def test_eval_checkpoint_reads_the_file_once(trained, tmp_path, monkeypatch):
    import farreid.inference.loading as loading

    reads = []
    real = loading.load_checkpoint
    monkeypatch.setattr(loading, "load_checkpoint", lambda path: reads.append(path) or real(path))
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(trained.run), "-o", str(tmp_path / "e"),
                                      "eval.show_queries=0", "data.protocol=A2G"])
    assert result.exit_code == 0, result.output
    assert len(reads) == 1
