"""Evaluation and retrieval on features: distances, exact chunked metrics, protocols, re-ranking, CSV, report.

Everything here works on features plus metadata; `extract_features` is the one bridge to a model, through any
`embed_fn(batch) -> (B, D)`.
"""

from farreid.eval.collect import RankingCollector, TopKCollector
from farreid.eval.distance import distance_chunks, distance_matrix, matrix_chunks
from farreid.eval.extract import EmbeddingSums, embedding_sums, extract_features
from farreid.eval.features import FeatureSet, load_feature_set, read_feature_metadata, save_feature_set
from farreid.eval.metrics import RankAccumulator, RankResult, evaluate_rank
from farreid.eval.pipeline import run_evaluation
from farreid.eval.protocols import (
    EvaluationResult,
    ProtocolData,
    ProtocolResult,
    evaluate_protocol,
    evaluate_protocols,
)
from farreid.eval.rerank import re_ranking, rerank_feature_chunks, rerank_matrix_chunks
from farreid.eval.store import load_protocols, save_protocol
from farreid.eval.submission import read_submission, score_submission, write_submission

__all__ = [
    "EmbeddingSums",
    "EvaluationResult",
    "FeatureSet",
    "ProtocolData",
    "ProtocolResult",
    "RankAccumulator",
    "RankResult",
    "RankingCollector",
    "TopKCollector",
    "distance_chunks",
    "distance_matrix",
    "embedding_sums",
    "evaluate_protocol",
    "evaluate_protocols",
    "evaluate_rank",
    "extract_features",
    "load_feature_set",
    "load_protocols",
    "matrix_chunks",
    "re_ranking",
    "read_feature_metadata",
    "read_submission",
    "rerank_feature_chunks",
    "rerank_matrix_chunks",
    "run_evaluation",
    "save_feature_set",
    "save_protocol",
    "score_submission",
    "write_submission",
]
