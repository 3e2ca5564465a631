import numpy as np
import pytest
import torch

from _torchreid_oracle import torchreid_oracles
from farreid.errors import FarreidError
from farreid.eval import distance_matrix, re_ranking, rerank_feature_chunks, rerank_matrix_chunks
from farreid.eval.rerank import RerankParams


def features(seed, n, dim=16, ids=25, noise=0.8):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    return torch.from_numpy((centers[rng.integers(0, ids, n)] + noise * rng.normal(size=(n, dim))).astype(np.float32))


def matrices(qf, gf, metric):
    return tuple(distance_matrix(a, b, metric).numpy() for a, b in ((qf, gf), (qf, qf), (gf, gf)))


def stacked(chunks):
    return torch.cat([block for _, block in chunks]).numpy()


@pytest.mark.parametrize(
    "q, g, k1, k2, lam, metric",
    [
        (30, 200, 20, 6, 0.3, "euclidean"),
        (50, 300, 7, 3, 0.5, "cosine"),
        (20, 100, 21, 1, 0.1, "euclidean"),  # k2 = 1 skips query expansion; k1 odd -> round-half-even
        (40, 250, 23, 6, 0.0, "cosine"),  # np.around(11.5) = 12
        (60, 60, 28, 6, 0.28, "euclidean"),  # the paper's tuned values, q == g
        (5, 12, 20, 6, 0.3, "euclidean"),  # fewer items than k1 + 1
        (300, 1200, 20, 6, 0.3, "cosine"),  # N = 1500
    ],
)
def test_equals_torchreid_re_ranking(q, g, k1, k2, lam, metric):
    _, rerank = torchreid_oracles()
    x = features(q + g, q + g)
    q_g, q_q, g_g = matrices(x[:q], x[q:], metric)
    expected = rerank.re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    ours = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    assert ours.shape == (q, g) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5, rtol=0)


def test_equals_torchreid_on_asymmetric_float64_matrices():
    # torchreid transposes the column-normalised matrix; a non-symmetric input shows we follow that exactly
    _, rerank = torchreid_oracles()
    rng = np.random.default_rng(4)
    q, g = 25, 90
    base = rng.random((q + g, q + g)) + 0.05
    q_q, q_g, g_g = base[:q, :q], base[:q, q:], base[q:, q:]
    expected = rerank.re_ranking(q_g, q_q, g_g, k1=9, k2=4, lambda_value=0.4)
    np.testing.assert_allclose(re_ranking(q_g, q_q, g_g, 9, 4, 0.4).numpy(), expected, atol=1e-5, rtol=0)


def test_feature_path_equals_matrix_path_and_chunking_is_invisible():
    q, g = 40, 160
    x = features(9, q + g, dim=24)
    for normalize in (True, False):
        feats = torch.nn.functional.normalize(x, dim=1) if normalize else x
        q_g, q_q, g_g = matrices(feats[:q], feats[q:], "euclidean")
        reference = stacked(rerank_matrix_chunks(q_g, q_q, g_g, 12, 5, 0.3, chunk_size=1000))
        for chunk in (1, 7, 64):
            got = stacked(rerank_feature_chunks(x[:q], x[q:], 12, 5, 0.3, normalize=normalize, chunk_size=chunk))
            np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)


def test_lambda_one_keeps_the_base_ordering():
    q, g = 20, 80
    x = features(2, q + g)
    out = stacked(rerank_feature_chunks(x[:q], x[q:], lambda_value=1.0, normalize=False))
    base = distance_matrix(x[:q], x[q:], "euclidean").numpy()
    np.testing.assert_array_equal(np.argsort(out, axis=1, kind="stable"), np.argsort(base, axis=1, kind="stable"))


def test_gallery_permutation_permutes_the_output():
    q, g = 15, 70
    x = features(3, q + g)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(g))
    a = stacked(rerank_feature_chunks(x[:q], x[q:]))
    b = stacked(rerank_feature_chunks(x[:q], x[q:][perm]))
    np.testing.assert_allclose(b, a[:, perm.numpy()], atol=1e-6)


def test_memory_budgets_do_not_change_the_result(monkeypatch):
    import farreid.eval.rerank as rerank_module

    x = features(5, 140)
    full = stacked(rerank_feature_chunks(x[:30], x[30:]))
    monkeypatch.setattr(rerank_module, "PAIR_BUDGET", 50)
    np.testing.assert_array_equal(stacked(rerank_feature_chunks(x[:30], x[30:])), full)
    monkeypatch.setattr(rerank_module, "BLOCK_BYTES", 20_000)  # other matmul blocks: float rounding only
    np.testing.assert_allclose(stacked(rerank_feature_chunks(x[:30], x[30:])), full, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: RerankParams(k1=0), "k1 >= 1"),
        (lambda: RerankParams(lambda_value=1.5), r"\[0, 1\]"),
        (lambda: re_ranking(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 2))), r"g_g \(g, g\)"),
        (lambda: rerank_feature_chunks(torch.ones(2, 4), torch.ones(3, 5)), "dimension"),
        (lambda: rerank_feature_chunks(torch.ones(2, 4), torch.ones(3, 4), chunk_size=0), "chunk_size"),
        (lambda: stacked(rerank_feature_chunks(torch.ones(2, 4), torch.ones(3, 4))), "distance 0 from every item"),
        (lambda: rerank_feature_chunks(torch.full((2, 4), float("nan")), torch.ones(3, 4)), "NaN"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(FarreidError, match=message):
        call()


def test_pair_values_outside_the_kept_neighbours_are_computed():
    from farreid.eval.rerank import _neighbours, _pair_values
    from farreid.eval.rerank_source import FeatureSource

    x = features(6, 60)
    src = FeatureSource(x[:10], x[10:], normalize=False)
    knn, values, row_max = _neighbours(src, 3)  # few kept: most pairs below are not in the lists
    rows = torch.arange(60).repeat_interleave(60)
    cols = torch.arange(60).repeat(60)
    expected = (torch.cdist(x.double(), x.double()) ** 2).float()
    expected = (expected / expected.max(dim=1).values[:, None])[rows, cols]
    torch.testing.assert_close(_pair_values(src, knn, values, row_max, rows, cols), expected, atol=1e-5, rtol=1e-4)
