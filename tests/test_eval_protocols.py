import json

import numpy as np
import pytest

from _eval_data import challenge_protocols
from farreid.errors import FarreidError
from farreid.config.schema import EvalConfig, RerankConfig
from farreid.eval import ProtocolData, RankResult, distance_matrix, evaluate_protocol, evaluate_protocols, evaluate_rank


def test_protocol_metrics_equal_direct_evaluation():
    p = challenge_protocols(seed=1)[0]
    res = evaluate_protocol(p, EvalConfig(metric="cosine", query_chunk=5), topk=4, keep_ranking=True)
    dist = distance_matrix(p.query.features, p.gallery.features, "cosine")
    direct = evaluate_rank(dist, p.query.pids, p.gallery.pids, p.query.camids, p.gallery.camids)
    np.testing.assert_array_equal(res.rank.ap, direct.ap)
    order = np.argsort(dist.numpy(), axis=1, kind="stable")
    np.testing.assert_array_equal(res.ranking, order)
    np.testing.assert_array_equal(res.topk, order[:, :4])


def test_overall_is_reported_pooled_and_as_mean():
    result = evaluate_protocols(challenge_protocols(seed=2, nq=6), EvalConfig(metric="euclidean"))
    ranks = [p.rank for p in result.protocols]
    assert [p.name for p in result.protocols] == ["A2G", "G2A", "A2A"]
    assert result.pooled.mAP == pytest.approx(np.nanmean(np.concatenate([r.ap for r in ranks])))
    assert result.mean_of_protocols()["mAP"] == pytest.approx(np.mean([r.mAP for r in ranks]))
    assert result.pooled.mAP == pytest.approx(RankResult.pooled(ranks).mAP)
    table = result.table()
    assert "overall (pooled)" in table and "overall (mean)" in table and "mINP" in table
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # aligned columns
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["protocols"]) == {"A2G", "G2A", "A2A"}
    assert len(data["protocols"]["A2G"]["cmc"]) == 50 and data["settings"]["metric"] == "euclidean"


def test_rerank_goes_through_the_protocol_stream():
    p = challenge_protocols(seed=3, nq=10, ng=50)[2]
    plain = evaluate_protocol(p)
    reranked = evaluate_protocol(p, EvalConfig(rerank=RerankConfig(enabled=True, k1=8, k2=3, lambda_value=0.3)))
    assert reranked.rank.num_query == plain.rank.num_query
    assert not np.array_equal(plain.topk, reranked.topk)


def test_anonymised_labels_give_rankings_without_metrics():
    protocols = challenge_protocols(seed=4, anonymised=True)
    result = evaluate_protocols(protocols, keep_ranking=True)
    assert all(p.rank is None and p.ranking.shape == (12, 40) for p in result.protocols)
    assert result.pooled is None and result.mean_of_protocols() is None
    assert "-/12" in result.table()


def test_protocol_errors():
    p = challenge_protocols(nq=3, ng=4)[0]
    with pytest.raises(FarreidError, match="non-empty"):
        ProtocolData("X", p.query.subset([]), p.gallery)
    with pytest.raises(FarreidError, match="unique"):
        evaluate_protocols([p, p])
    with pytest.raises(FarreidError, match="no protocols"):
        evaluate_protocols([])
