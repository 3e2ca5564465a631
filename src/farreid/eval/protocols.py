"""Protocol-level evaluation: A2G / G2A / A2A (or any named query/gallery pairs), overall scores, summary table.

"Overall" is reported two ways: query-pooled (every valid query of every protocol weighs the same, which is how
the VReID-XFD leaderboard's overall score behaves) and the unweighted mean of the protocols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from farreid.config.schema import EvalConfig
from farreid.errors import FarreidError
from farreid.eval.collect import RankingCollector, TopKCollector
from farreid.eval.distance import distance_chunks
from farreid.eval.features import FeatureSet
from farreid.eval.metrics import RankAccumulator, RankResult
from farreid.eval.ranking import JunkRule
from farreid.eval.rerank import rerank_feature_chunks
from farreid.utils.log import get_logger

CASE_ORDER = ("A2G", "G2A", "A2A")
TABLE_METRICS = ("mAP", "R1", "R5", "R10", "R20", "mINP")
log = get_logger("eval")


@dataclass
class ProtocolData:
    name: str
    query: FeatureSet
    gallery: FeatureSet

    def __post_init__(self):
        if not len(self.query) or not len(self.gallery):
            raise FarreidError(f"protocol {self.name}: query and gallery must both be non-empty")
        if self.query.dim != self.gallery.dim:
            raise FarreidError(
                f"protocol {self.name}: query features have dimension {self.query.dim}, gallery {self.gallery.dim}"
            )

    @property
    def labelled(self) -> bool:
        return self.query.labelled and self.gallery.labelled


@dataclass
class ProtocolResult:
    name: str
    num_query: int
    num_gallery: int
    rank: RankResult | None  # None when the labels are anonymised
    topk: np.ndarray  # (num_query, k) gallery indices, best first
    ranking: np.ndarray | None = None  # (num_query, num_gallery) whole order, when requested


def protocol_order(names: list[str]) -> list[str]:
    """A2G, G2A, A2A first (the challenge's case order), then the others alphabetically."""
    known = [n for n in CASE_ORDER if n in names]
    return known + sorted(n for n in names if n not in CASE_ORDER)


def evaluate_protocol(
    data: ProtocolData,
    options: EvalConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    topk: int = 10,
    keep_ranking: bool = False,
) -> ProtocolResult:
    """Distances (or re-ranked distances) streamed once into the metrics and the ranking collectors.

    `options` supplies metric, junk rule, max_rank, map_at, ap_interpolation, query_chunk and rerank (`eval.*`).
    """
    options = options or EvalConfig()
    q, g = data.query, data.gallery
    consumers: list = []
    acc = None
    if data.labelled:
        acc = RankAccumulator(
            q.pids, g.pids, q.camids, g.camids, junk=JunkRule(options.junk), q_names=q.names, g_names=g.names,
            max_rank=options.max_rank, map_at=tuple(options.map_at), ap_interpolation=options.ap_interpolation,
        )
        consumers.append(acc)
    top = TopKCollector(len(q), len(g), topk)
    consumers.append(top)
    full = RankingCollector(len(q), len(g)) if keep_ranking else None
    if full is not None:
        consumers.append(full)
    rerank = options.rerank
    if rerank.enabled:
        chunks = rerank_feature_chunks(
            q.features, g.features, rerank.k1, rerank.k2, rerank.lambda_value,
            # re-ranked chunks carry ~4 (chunk x gallery) float buffers while the Jaccard sums run: keep them small
            normalize=options.metric == "cosine", chunk_size=min(options.query_chunk, 256), device=device,
        )
    else:
        chunks = distance_chunks(q.features, g.features, options.metric, options.query_chunk, device)
    for start, block in chunks:
        for consumer in consumers:
            consumer.update(start, block)
    rank = acc.result() if acc is not None else None
    if acc is None:
        log.info(f"{data.name}: labels are anonymised, rankings only")
    return ProtocolResult(data.name, len(q), len(g), rank, top.result(), full.result() if full else None)


@dataclass
class EvaluationResult:
    protocols: list[ProtocolResult]
    settings: dict = field(default_factory=dict)

    @property
    def labelled(self) -> list[ProtocolResult]:
        return [p for p in self.protocols if p.rank is not None]

    @property
    def pooled(self) -> RankResult | None:
        ranks = [p.rank for p in self.labelled]
        return RankResult.pooled(ranks) if ranks else None

    def mean_of_protocols(self) -> dict[str, float] | None:
        summaries = [p.rank.summary() for p in self.labelled]
        if not summaries:
            return None
        return {k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]}

    def rows(self) -> list[tuple[str, str, dict[str, float] | None]]:
        """(label, query counts, metrics) for every line of the summary table."""
        out = []
        for p in self.protocols:
            counts = f"{p.rank.num_valid}/{p.num_query}" if p.rank else f"-/{p.num_query}"
            out.append((p.name, counts, p.rank.summary() if p.rank else None))
        pooled = self.pooled
        if pooled is not None and len(self.labelled) > 1:
            out.append(("overall (pooled)", f"{pooled.num_valid}/{pooled.num_query}", pooled.summary()))
            out.append(("overall (mean)", "", self.mean_of_protocols()))
        return out

    def table(self, metrics: tuple[str, ...] = TABLE_METRICS) -> str:
        """Aligned plain-text table of `metrics` (keys of `RankResult.summary`, e.g. "mAP@20"), in percent."""
        header = ("protocol", "queries", "gallery", *metrics)
        galleries = {p.name: str(p.num_gallery) for p in self.protocols}
        lines = [header]
        for label, counts, scores in self.rows():
            values = [_pct(scores.get(m) if scores else None) for m in metrics]
            lines.append((label, counts, galleries.get(label, ""), *values))
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        text = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in lines
        ]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)

    def to_dict(self) -> dict:
        pooled, mean = self.pooled, self.mean_of_protocols()
        return {
            "settings": self.settings,
            "protocols": {
                p.name: {"num_query": p.num_query, "num_gallery": p.num_gallery, "labelled": p.rank is not None,
                         **(p.rank.to_dict() if p.rank else {})}
                for p in self.protocols
            },
            "overall_pooled": pooled.to_dict() if pooled else None,
            "overall_mean": mean,
        }


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def evaluate_protocols(
    protocols: list[ProtocolData],
    options: EvalConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    topk: int = 10,
    keep_ranking: bool = False,
) -> EvaluationResult:
    """`evaluate_protocol` for each protocol, in challenge case order; the settings are recorded."""
    options = options or EvalConfig()
    if not protocols:
        raise FarreidError("no protocols to evaluate")
    by_name = {p.name: p for p in protocols}
    if len(by_name) != len(protocols):
        raise FarreidError("protocol names must be unique")
    junk = JunkRule(options.junk)
    for data in protocols:  # all of them before the first is ranked
        if data.labelled:
            junk.check_scorable(data.name, data.query, data.gallery)
    results = []
    for name in protocol_order(list(by_name)):
        log.info(f"evaluating {name}: {len(by_name[name].query)} queries x {len(by_name[name].gallery)} gallery")
        results.append(evaluate_protocol(by_name[name], options, device=device, topk=topk, keep_ranking=keep_ranking))
    rerank = options.rerank
    settings = {"metric": options.metric, "junk": options.junk, "max_rank": options.max_rank,
                "map_at": list(options.map_at), "ap_interpolation": options.ap_interpolation,
                "rerank": {"k1": rerank.k1, "k2": rerank.k2, "lambda_value": rerank.lambda_value}
                if rerank.enabled else None}
    return EvaluationResult(results, settings)
