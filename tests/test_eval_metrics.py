import numpy as np
import pytest
import torch

from _torchreid_oracle import torchreid_oracles
from farreid.errors import FarreidError
from farreid.eval import RankResult, distance_chunks, distance_matrix, evaluate_rank
from farreid.eval.ranking import JunkRule, relevant_positions


def random_case(seed, nq, ng, ids, cams=3):
    rng = np.random.default_rng(seed)
    dist = rng.random((nq, ng))  # float64: no ties, so torchreid's unstable argsort has one answer
    pids = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    return dist, *pids, rng.integers(0, cams, nq), rng.integers(0, cams, ng)


def test_hand_computed_case():
    # query pid 1 cam 0; gallery pids [1,2,1,3,1], cams [0,1,1,2,2]; item 0 is junk -> hits [0,1,0,1]
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    r = evaluate_rank(dist, [1], [1, 2, 1, 3, 1], [0], [0, 1, 1, 2, 2], max_rank=4, map_at=(1, 2, 4))
    assert r.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r.mINP == pytest.approx(2 / 4)  # 2 positives, hardest at kept rank 4
    assert r.map_at == pytest.approx({1: 0.0, 2: 0.5 / 1 / 2 * 2 / 2, 4: 0.5})
    assert r.first_hit.tolist() == [2] and r.num_positive.tolist() == [2]


def test_minp_hand_case_with_three_positives():
    # kept ranking hits [1,0,0,1,0,1]: INP = 3 / 6, AP = (1/1 + 2/4 + 3/6) / 3
    dist = np.arange(6, dtype=float)[None]
    r = evaluate_rank(dist, [7], [7, 1, 2, 7, 3, 7], [0], [1, 1, 1, 1, 1, 1])
    assert r.mINP == pytest.approx(0.5)
    assert r.mAP == pytest.approx((1 + 0.5 + 0.5) / 3)


@pytest.mark.parametrize("seed,nq,ng,ids", [(0, 40, 300, 30), (1, 97, 250, 12), (2, 64, 500, 80), (3, 10, 120, 4)])
def test_equals_torchreid_evaluate_rank(seed, nq, ng, ids):
    rank, _ = torchreid_oracles()
    dist, qp, gp, qc, gc = random_case(seed, nq, ng, ids)
    cmc, mAP = rank.evaluate_rank(dist, qp, gp, qc, gc, max_rank=50, use_cython=False)
    ours = evaluate_rank(dist, qp, gp, qc, gc, max_rank=50, chunk_size=17)
    # CMC exactly: the same number of hit queries at every rank
    assert np.array_equal(np.rint(ours.cmc * ours.num_valid), np.rint(cmc.astype(np.float64) * ours.num_valid))
    assert ours.mAP == pytest.approx(mAP, abs=1e-6)


def test_chunk_size_and_order_do_not_change_any_number():
    dist, qp, gp, qc, gc = random_case(5, 83, 211, 15)
    ref = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=10_000, map_at=(5, 10))
    for chunk in (1, 7, 32):
        r = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=chunk, map_at=(5, 10))
        for key in ("ap", "inp", "first_hit", "num_positive"):
            np.testing.assert_array_equal(getattr(r, key), getattr(ref, key))
        for k in (5, 10):
            np.testing.assert_array_equal(r.ap_at[k], ref.ap_at[k])
    reversed_chunks = [(s, torch.from_numpy(dist[s : s + 20])) for s in range(0, 83, 20)][::-1]
    r = evaluate_rank(reversed_chunks, qp, gp, qc, gc, map_at=(5, 10))
    np.testing.assert_array_equal(r.ap, ref.ap)


def test_feature_stream_equals_whole_matrix():
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(30, 8, generator=g), torch.randn(90, 8, generator=g)
    qp, gp = np.arange(30) % 9, np.arange(90) % 9
    qc, gc = np.zeros(30, int), np.ones(90, int)
    for metric in ("cosine", "euclidean"):
        whole = evaluate_rank(distance_matrix(qf, gf, metric), qp, gp, qc, gc)
        streamed = evaluate_rank(distance_chunks(qf, gf, metric, chunk_size=7), qp, gp, qc, gc)
        np.testing.assert_array_equal(whole.ap, streamed.ap)


def test_numpy_and_torch_backends_agree_including_ties():
    rng = np.random.default_rng(3)
    dist = rng.integers(0, 6, size=(40, 50)).astype(np.float32)  # many ties
    qp, gp = rng.integers(0, 5, 40), rng.integers(0, 5, 50)
    rel = JunkRule("camera").relevant_items(qp, gp, rng.integers(0, 2, 40), rng.integers(0, 2, 50))
    a = relevant_positions(dist, rel, backend="numpy")
    b = relevant_positions(dist, rel, backend="torch")
    np.testing.assert_array_equal(a, b)
    # the definition: stable order (distance, then gallery index)
    order = np.argsort(dist, axis=1, kind="stable")
    position = np.argsort(order, axis=1)
    rows = np.repeat(np.arange(40), np.diff(rel.ptr))
    np.testing.assert_array_equal(a, position[rows, rel.gallery])


def test_half_precision_blocks_are_accepted():
    dist, qp, gp, qc, gc = random_case(8, 12, 40, 5)
    half = torch.from_numpy(dist).to(torch.bfloat16)
    np.testing.assert_array_equal(evaluate_rank(half, qp, gp, qc, gc).ap, evaluate_rank(half.float(), qp, gp, qc, gc).ap)


def test_ties_are_broken_by_gallery_index():
    dist = np.zeros((1, 4))  # all tied: order is 0, 1, 2, 3
    r = evaluate_rank(dist, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1])
    assert r.first_hit.tolist() == [2] and r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_tiny_gallery_cmc_is_defined_beyond_the_kept_list():
    # 3 gallery items, one of them junk: the query keeps 2 < max_rank; torchreid raises on such cases
    # query 0 keeps items 1, 2 (item 0 is junk) and hits at 1; query 1 keeps all 3 and hits at 3
    dist = np.array([[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]])
    r = evaluate_rank(dist, [1, 2], [1, 1, 2], [0, 0], [0, 1, 1], max_rank=5)
    assert r.cmc.shape == (5,)
    np.testing.assert_allclose(r.cmc, [0.5, 0.5, 1.0, 1.0, 1.0])
    assert r.rank(100) == 1.0


def test_queries_without_positive_are_excluded_and_counted():
    dist = np.array([[0.1, 0.2], [0.2, 0.1], [0.4, 0.5]])
    r = evaluate_rank(dist, [1, 9, 2], [1, 2], [0, 0, 0], [1, 1])
    assert r.num_query == 3 and r.num_valid == 2 and r.num_no_positive == 1
    assert np.isnan(r.ap[1]) and r.first_hit[1] == 0
    assert r.mAP == pytest.approx((1.0 + 0.5) / 2)  # query 2 finds its positive at rank 2


def test_no_valid_query_gives_nan_not_a_crash():
    r = evaluate_rank(np.ones((2, 3)), [5, 6], [1, 2, 3], [0, 0], [0, 0, 0])
    assert r.num_valid == 0 and np.isnan(r.mAP) and np.isnan(r.cmc).all() and np.isnan(r.rank(1))


def test_tracklet_junk_rule_removes_only_the_same_tracklet():
    dist = np.array([[0.1, 0.2, 0.3]])
    kwargs = dict(q_names=["t1"], g_names=["t1", "t2", "t3"], max_rank=3)
    by_name = evaluate_rank(dist, [4], [4, 4, 5], [0], [0, 0, 0], junk="tracklet", **kwargs)
    assert by_name.first_hit.tolist() == [1] and by_name.num_positive.tolist() == [1]  # t2 at kept rank 1
    by_camera = evaluate_rank(dist, [4], [4, 4, 5], [0], [0, 0, 0], junk="camera", **kwargs)
    assert by_camera.num_valid == 0  # both same-pid items share the query's camera
    # a same-name item of another identity is junk too (it is the query tracklet itself)
    other = evaluate_rank(dist, [4], [6, 4, 5], [0], [0, 0, 0], junk="tracklet", **kwargs)
    assert other.first_hit.tolist() == [1]


def test_pooling_is_query_weighted():
    a = evaluate_rank(np.array([[0.1, 0.2]]), [1], [1, 2], [0], [1, 1])
    b = evaluate_rank(np.array([[0.1, 0.2], [0.1, 0.2], [0.1, 0.2]]), [2, 2, 2], [1, 2], [0, 0, 0], [1, 1])
    pooled = RankResult.pooled([a, b])
    assert pooled.num_query == 4 and pooled.mAP == pytest.approx((1 + 3 * 0.5) / 4)
    assert pooled.rank(1) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: evaluate_rank(np.array([[np.nan, 1.0]]), [1], [1, 2], [0], [1, 1]), "NaN"),
        (lambda: evaluate_rank(np.ones((2, 3)), [1, 2], [1, 2], [0, 0], [1, 1]), "does not fit"),
        (lambda: evaluate_rank([(0, torch.ones(1, 2))], [1, 2], [1, 2], [0, 0], [1, 1]), "never received"),
        (lambda: evaluate_rank([(0, torch.ones(1, 2))] * 2, [1], [1, 2], [0], [1, 1]), "given twice"),
        (lambda: evaluate_rank(np.ones((1, 2)), [1], [1, 2], junk="camera"), "camera ids"),
        (lambda: evaluate_rank(np.ones((1, 2)), [1], [1, 2], [0], [1, 1], junk="pid"), "unknown junk rule"),
        (lambda: evaluate_rank(np.ones((1, 2)), [1], [1, 2], [0], [1, 1], max_rank=0), "max_rank"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(FarreidError, match=message):
        call()
