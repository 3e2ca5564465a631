"""From tracklets to batches: the batch contract, keyed randomness, resume, dense chunks, held-out validation."""

import math

import pytest
import torch
from PIL import Image

from farreid.config import load_config
from farreid.data import (
    ClipDataset,
    FrameList,
    Tracklet,
    TrackletSet,
    build_test_loader,
    build_train_loader,
    collate_clips,
    holdout_identities,
    stats_table,
)
from farreid.errors import FarreidError


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """6 identities x (2 ground + 2 aerial) tracklets of 3-9 small JPEG frames."""
    root = tmp_path_factory.mktemp("frames")
    tracklets = []
    for pid in range(6):
        for k in range(4):
            folder = root / f"{pid}_{k}"
            folder.mkdir()
            n = 3 + (pid + k) % 7
            for f in range(n):
                Image.new("RGB", (12, 24), (40 * pid, 60 * k, 10 * f)).save(folder / f"{f:03d}.jpg")
            aerial = k >= 2
            tracklets.append(Tracklet(
                FrameList(str(folder), [f"{f:03d}.jpg" for f in range(n)]), pid, k - 1 if aerial else 0,
                "aerial" if aerial else "ground", folder.name,
                altitude=20.0 if aerial else None, distance=30.0 if aerial else None, session=k - 1 if aerial else None,
            ))
    return TrackletSet("train", tracklets)


SIZE = (32, 16)  # the model input size frames are resized to


def _cfg(*overrides):
    return load_config(None, ["data.train_frames=4", "data.test_frames=4",
                              "data.ids_per_batch=2", "data.tracklets_per_id=2", "data.workers=0", *overrides]).data


def test_batch_follows_the_contract(tiny_set):
    batch = next(iter(build_train_loader(tiny_set, _cfg(), SIZE, seed=0)))
    assert batch["clip"].shape == (4, 4, 3, 32, 16) and batch["clip"].dtype == torch.float32
    assert batch["mask"].dtype == torch.bool and batch["mask"].all()
    for key in ("pid", "camid", "platform", "index"):
        assert batch[key].dtype == torch.int64 and batch[key].shape == (4,)
    for key in ("altitude", "distance"):
        assert batch[key].dtype == torch.float32
    for i, index in enumerate(batch["index"].tolist()):
        t = tiny_set[index]
        assert batch["pid"][i] == t.pid and batch["platform"][i] == t.platform_code
        assert math.isnan(batch["altitude"][i]) == (t.altitude is None)


def test_training_batches_are_reproducible_and_resume_exactly(tiny_set):
    cfg = _cfg()
    full = build_train_loader(tiny_set, cfg, SIZE, seed=3)
    full.set_epoch(1)
    expected = list(full)
    interrupted = build_train_loader(tiny_set, cfg, SIZE, seed=3)
    interrupted.set_epoch(1)
    it = iter(interrupted)
    first = [next(it), next(it)]
    state = interrupted.state_dict()
    assert state["position"] == 2 and state["epoch"] == 1
    resumed = build_train_loader(tiny_set, cfg, SIZE, seed=3)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)
    rest = list(resumed)
    assert len(first) + len(rest) == len(expected)
    for got, want in zip(first + rest, expected):
        assert torch.equal(got["index"], want["index"]) and torch.equal(got["clip"], want["clip"])


def test_workers_give_the_same_batches_as_the_main_process(tiny_set):
    single = list(build_train_loader(tiny_set, _cfg(), SIZE, seed=1))
    workers = list(build_train_loader(tiny_set, _cfg("data.workers=2"), SIZE, seed=1))
    assert len(single) == len(workers)
    assert all(torch.equal(a["clip"], b["clip"]) for a, b in zip(single, workers))


def test_ddp_ranks_see_disjoint_batches(tiny_set):
    ranks = [list(build_train_loader(tiny_set, _cfg(), SIZE, seed=2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    keys = [{tuple(b["index"].tolist()) for b in batches} for batches in ranks]
    assert not keys[0] & keys[1]


def test_test_loader_is_deterministic_and_in_order(tiny_set):
    loader = build_test_loader(tiny_set, _cfg(), SIZE, batch_size=5)
    a, b = list(loader), list(loader)
    assert torch.cat([x["index"] for x in a]).tolist() == list(range(len(tiny_set)))
    assert all(torch.equal(x["clip"], y["clip"]) for x, y in zip(a, b))


def test_dense_test_loader_chunks_every_frame_with_mask(tiny_set):
    loader = build_test_loader(tiny_set, _cfg(), SIZE, batch_size=7, dense=True)
    batches = list(loader)
    index = torch.cat([b["index"] for b in batches])
    mask = torch.cat([b["mask"] for b in batches])
    for i, t in enumerate(tiny_set):
        assert int(mask[index == i].sum()) == len(t.frames)
    assert not mask.all()


def test_train_sampling_all_is_rejected(tiny_set):
    cfg = _cfg()
    cfg.train_sampling = "all"
    with pytest.raises(FarreidError, match="test-time mode"):
        build_train_loader(tiny_set, cfg, SIZE)


def test_clip_dataset_without_config_and_unreadable_frame(tiny_set, tmp_path):
    ds = ClipDataset(tiny_set, (16, 8), 3)
    item = ds[0]
    assert item["clip"].shape == (3, 3, 16, 8) and collate_clips([item, ds[1]])["clip"].shape[0] == 2
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff broken")
    broken = ClipDataset([Tracklet((str(bad),), 0, 0, "ground", "b")], (16, 8), 2)
    with pytest.raises(FarreidError, match="unreadable image .*bad.jpg"):
        broken[0]


def test_frame_list_behaves_like_a_tuple_of_paths(tmp_path):
    frames = FrameList(str(tmp_path), ["a.jpg", "b.jpg", "c.jpg"])
    paths = tuple(str(tmp_path / f"{n}.jpg") for n in "abc")
    assert frames == paths and len(frames) == 3 and frames[-1] == paths[-1] and frames[1:] == paths[1:]
    assert list(frames) == list(paths) and frames.paths([2, 0]) == [paths[2], paths[0]]
    t = Tracklet(list(paths), 1, 0, "ground", "x")
    assert isinstance(t.frames, FrameList) and t.frames == frames
    with pytest.raises(FarreidError, match="platform"):
        Tracklet(paths, 1, 0, "space", "x")
    with pytest.raises(FarreidError, match="no frames"):
        Tracklet((), 1, 0, "ground", "x")


def test_stats_and_table(tiny_set):
    stats = tiny_set.stats()
    assert stats["ids"] == 6 and stats["tracklets"] == 24 and stats["aerial_tracklets"] == 12
    assert stats["frames"] == sum(len(t) for t in tiny_set) == stats["ground_frames"] + stats["aerial_frames"]
    table = stats_table([tiny_set])
    assert table.splitlines()[0].startswith("split") and "train" in table.splitlines()[2]


def test_holdout_identities_cross_platform_and_relabelled(tiny_set):
    train, query, gallery = holdout_identities(tiny_set, 2, seed=0)
    held = {t.pid for t in query}
    assert len(held) == 2 and held == {t.pid for t in gallery}
    assert sorted({t.pid for t in train}) == [0, 1, 2, 3] and len(train) == 16
    names = {t.name for t in query} | {t.name for t in gallery}
    assert len(names) == len(query) + len(gallery) == 8  # disjoint, nothing lost
    for pid in held:  # every query platform has a positive on the other platform in the gallery
        q_platforms = {t.platform for t in query if t.pid == pid}
        g_platforms = {t.platform for t in gallery if t.pid == pid}
        assert q_platforms == g_platforms == {"ground", "aerial"}
    again = holdout_identities(tiny_set, 2, seed=0)
    assert [t.name for t in again[1]] == [t.name for t in query]
    with pytest.raises(FarreidError, match="cannot hold out 6"):
        holdout_identities(tiny_set, 6)


def test_holdout_single_platform_splits_by_camera():
    tracklets = [Tracklet((f"/x/{p}_{c}.jpg",), p, c, "ground", f"{p}_{c}") for p in range(4) for c in range(2)]
    _, query, gallery = holdout_identities(TrackletSet("train", tracklets), 1, seed=1)
    assert [t.camid for t in query] == [0] and [t.camid for t in gallery] == [1]
