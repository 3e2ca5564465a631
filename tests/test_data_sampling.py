"""Temporal sampling and the identity-balanced batch sampler: properties over many seeds and sizes."""

import itertools

import numpy as np
import pytest

from farreid.data import IdentityBatchSampler
from farreid.data.sampling import dense_chunks, num_chunks, restricted_random, sample_clip, segment_begin
from farreid.errors import FarreidError


@pytest.mark.parametrize("n, t", [(1, 4), (3, 8), (8, 8), (9, 4), (100, 16), (1001, 8)])
def test_restricted_random_takes_one_frame_per_segment_in_order(n, t):
    starts = segment_begin(n, t)
    for seed in range(20):
        idx = restricted_random(n, t, np.random.default_rng(seed))
        assert idx.shape == (t,) and (np.diff(idx) >= 0).all() and idx.min() >= 0 and idx.max() < n
        assert (idx >= starts).all()
        if n >= t:  # each index lies in its own segment, so all are distinct
            ends = np.append(starts[1:], n)
            assert (idx < ends).all() and len(set(idx.tolist())) == t


def test_short_tracklets_are_stretched_by_repetition_in_order():
    assert segment_begin(3, 8).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    idx = sample_clip("consecutive", 3, 8, np.random.default_rng(0))
    assert sorted(set(idx.tolist())) == [0, 1, 2] and (np.diff(idx) >= 0).all()


def test_segment_begin_is_even_and_deterministic():
    assert segment_begin(16, 4).tolist() == [0, 4, 8, 12]
    assert segment_begin(17, 4).tolist() == segment_begin(17, 4).tolist()


def test_consecutive_is_a_contiguous_window_and_seeded():
    a = sample_clip("consecutive", 50, 8, np.random.default_rng(5))
    b = sample_clip("consecutive", 50, 8, np.random.default_rng(5))
    assert (a == b).all() and (np.diff(a) == 1).all() and a[-1] < 50


@pytest.mark.parametrize("n, t", [(1, 4), (8, 4), (10, 4), (33, 16)])
def test_dense_chunks_cover_every_frame_once_with_padding_masked(n, t):
    chunks = dense_chunks(n, t)
    assert len(chunks) == num_chunks(n, t)
    real = np.concatenate([idx[mask] for idx, mask in chunks])
    assert real.tolist() == list(range(n))
    assert all(idx.shape == (t,) and mask[0] for idx, mask in chunks)


def test_unknown_mode_and_empty_tracklet_are_errors():
    with pytest.raises(FarreidError, match="temporal sampling"):
        sample_clip("random_walk", 10, 4, np.random.default_rng(0))
    with pytest.raises(FarreidError, match="from a tracklet of 0 frames"):
        sample_clip("segment_begin", 0, 4, np.random.default_rng(0))


# --- identity batch sampler ----------------------------------------------------------------------------------

def _pids(seed=0, ids=13):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, ids)  # some identities have fewer than K tracklets
    return [pid for pid, c in enumerate(counts) for _ in range(c)]


@pytest.mark.parametrize("seed", range(5))
def test_batches_hold_p_distinct_identities_times_k(seed):
    pids = _pids(seed)
    sampler = IdentityBatchSampler(pids, P=4, K=3, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 12
        owners = [pids[i] for i in batch]
        groups = [owners[k * 3:(k + 1) * 3] for k in range(4)]
        assert all(len(set(g)) == 1 for g in groups) and len({g[0] for g in groups}) == 4


def test_every_tracklet_is_used_each_epoch_when_identities_can_pair_up():
    pids = [p for p in range(6) for _ in range(4)]
    used = set(itertools.chain.from_iterable(IdentityBatchSampler(pids, P=2, K=4, seed=1)))
    assert used == set(range(len(pids)))


def test_identity_with_fewer_than_k_tracklets_is_sampled_with_replacement():
    pids = [0, 1, 1, 1, 1]
    batch = next(iter(IdentityBatchSampler(pids, P=2, K=4, seed=0)))
    assert batch.count(0) == 4


def test_epochs_are_seeded_and_differ():
    pids = _pids()
    a, b = IdentityBatchSampler(pids, 3, 4, seed=7), IdentityBatchSampler(pids, 3, 4, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("epoch", [0, 4])
def test_ddp_shards_are_disjoint_equal_length_and_cover_the_epoch(replicas, epoch):
    pids = _pids(2, ids=20)
    full = IdentityBatchSampler(pids, 3, 2, seed=11)
    full.set_epoch(epoch)
    everything = list(full)
    shards = []
    for rank in range(replicas):
        s = IdentityBatchSampler(pids, 3, 2, seed=11, num_replicas=replicas, rank=rank)
        s.set_epoch(epoch)
        shards.append([tuple(b) for b in s])
    assert len({len(s) for s in shards}) == 1
    positions = [{everything.index(list(b)) for b in shard} for shard in shards]
    assert all(len(p) == len(shards[0]) for p in positions)
    assert all(not (a & b) for a, b in itertools.combinations(positions, 2))
    covered = sorted(itertools.chain.from_iterable(shards))
    assert covered == sorted(tuple(b) for b in everything[: len(shards[0]) * replicas])
    assert len(everything) - len(covered) < replicas


def test_resume_from_a_position_continues_with_the_same_batches():
    pids = _pids(3)
    reference = IdentityBatchSampler(pids, 3, 2, seed=5)
    reference.set_epoch(2)
    expected = list(reference)
    interrupted = IdentityBatchSampler(pids, 3, 2, seed=5)
    interrupted.set_epoch(2)
    seen = list(itertools.islice(iter(interrupted), 3))
    state = interrupted.state_dict()
    resumed = IdentityBatchSampler(pids, 3, 2, seed=5)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the engine calls this again on resume; it must not restart the epoch
    assert seen + list(resumed) == expected
    with pytest.raises(FarreidError, match="seed"):
        IdentityBatchSampler(pids, 3, 2, seed=6).load_state_dict(state)


def test_sampler_input_errors():
    with pytest.raises(FarreidError, match="only 2"):
        IdentityBatchSampler([0, 1], P=3, K=2)
    with pytest.raises(FarreidError, match="pid -1"):
        IdentityBatchSampler([0, -1, 1], P=2, K=2)
    with pytest.raises(FarreidError, match="rank 2"):
        IdentityBatchSampler([0, 1], P=2, K=2, num_replicas=2, rank=2)
