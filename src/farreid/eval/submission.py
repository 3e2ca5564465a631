"""The VReID-XFD challenge submission CSV, and a local scorer for such files.

Format: header `row_id,case,query_tracklet,ranked_gallery_tracklets`; cases in the order Case 1 (A2G), Case 2
(G2A), Case 3 (A2A); inside a case the queries sorted by (pid, tracklet name) (by name alone when labels are
anonymised, pid -1); `ranked_gallery_tracklets` = every gallery tracklet name of the case, best first,
space-separated; `row_id` counts from 1 across all cases.

The scorer also reads the AG-VPReID leaderboard's form, `row_id,query_tracklet,gallery_tracklets`: no case column
(each query's case is found from its name in the labels) and only the top of each ranking, so only the metrics
that the listed depth decides are computed (CMC and mAP@k up to it; mAP and mINP need the whole ranking).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from farreid.config.schema import EvalConfig
from farreid.errors import FarreidError
from farreid.eval.metrics import RankResult, evaluate_rank
from farreid.eval.protocols import CASE_ORDER, EvaluationResult, ProtocolData, ProtocolResult
from farreid.eval.ranking import JunkRule
from farreid.utils.io import atomic_write_text, from_spreadsheet_safe, read_text_file, spreadsheet_safe

CASE_NAMES = {
    "A2G": "Case 1: Aerial to Ground",
    "G2A": "Case 2: Ground to Aerial",
    "A2A": "Case 3: Aerial to Aerial",
}
HEADER = ("row_id", "case", "query_tracklet", "ranked_gallery_tracklets")
TOP_K_HEADER = ("row_id", "query_tracklet", "gallery_tracklets")  # the AG-VPReID leaderboard's form


def check_gallery_names(data: ProtocolData) -> None:
    """Gallery names are written space-separated, so they must be non-empty and free of whitespace."""
    bad = [n for n in data.gallery.names if not n or any(ch.isspace() for ch in n)]
    if bad:
        raise FarreidError(
            f"{data.name}: gallery tracklet name {bad[0]!r} is empty or contains whitespace, which the challenge "
            "CSV cannot represent (ranked names are space-separated)"
        )


def write_submission(path: str | Path, cases: dict[str, tuple[ProtocolData, np.ndarray]]) -> int:
    """Write the CSV from {protocol name: (data, (q, g) gallery order)}; returns the number of rows.

    Only the challenge cases (A2G, G2A, A2A) can be written; each ranking must order the whole gallery.
    """
    unknown = sorted(set(cases) - set(CASE_NAMES))
    if unknown:
        raise FarreidError(f"the challenge CSV has no case for protocol(s) {', '.join(unknown)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    row_id = 0
    for name in (n for n in CASE_ORDER if n in cases):
        data, ranking = cases[name]
        q, g = data.query, data.gallery
        check_gallery_names(data)
        if ranking.shape != (len(q), len(g)):
            raise FarreidError(f"{name}: ranking of shape {ranking.shape} for {len(q)} queries x {len(g)} gallery")
        gallery_names = np.array(g.names, dtype=object)
        for i in sorted(range(len(q)), key=lambda i: (int(q.pids[i]), q.names[i])):
            row_id += 1
            ranked = " ".join(gallery_names[ranking[i]])
            writer.writerow([row_id, CASE_NAMES[name], spreadsheet_safe(q.names[i]), spreadsheet_safe(ranked)])
    atomic_write_text(path, out.getvalue())
    return row_id


def read_submission_rows(path: str | Path) -> tuple[list[tuple[int, str | None, str, list[str]]], bool]:
    """(line, protocol name, query tracklet, ranked gallery tracklets) of every row, checking the format, and
    whether the file is the top-k form (then the protocol name is None and the lists may be partial)."""
    path = Path(path)
    if not path.is_file():
        raise FarreidError(f"submission CSV not found: {path}")
    by_case = {v: k for k, v in CASE_NAMES.items()}
    rows: list[tuple[int, str | None, str, list[str]]] = []
    with read_text_file(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        given = tuple(h.strip() for h in header) if header is not None else None
        if given not in (HEADER, TOP_K_HEADER):
            raise FarreidError(f"{path}: header must be {','.join(HEADER)} (or the AG-VPReID form "
                               f"{','.join(TOP_K_HEADER)}), got {header}")
        top_k = given == TOP_K_HEADER
        for line, row in enumerate(reader, start=2):
            if len(row) != len(given):
                raise FarreidError(f"{path}, line {line}: expected {len(given)} fields, got {len(row)}")
            if top_k:
                rows.append((line, None, from_spreadsheet_safe(row[1]), from_spreadsheet_safe(row[2]).split()))
                continue
            case = by_case.get(row[1])
            if case is None:
                raise FarreidError(f"{path}, line {line}: unknown case {row[1]!r}; expected one of {list(by_case)}")
            rows.append((line, case, from_spreadsheet_safe(row[2]), from_spreadsheet_safe(row[3]).split()))
    return rows, top_k


def read_submission(path: str | Path) -> dict[str, list[tuple[str, list[str]]]]:
    """{protocol name: [(query tracklet, ranked gallery tracklets), ...]} in file order, checking the format."""
    rows, top_k = read_submission_rows(path)
    if top_k:
        raise FarreidError(f"{path} is in the AG-VPReID top-k form, which has no cases; score it with labels")
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for _, case, query, ranked in rows:
        out.setdefault(case, []).append((query, ranked))
    return out


def _index(names: list[str], what: str) -> dict[str, int]:
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise FarreidError(f"{what} has duplicate tracklet names; rankings by name would be ambiguous")
    return index


def _is_labelled(part) -> bool:
    return bool(len(part.names)) and bool((np.asarray(part.pids) >= 0).all())


def _gallery_order(path: Path, line: int, case: str, query: str, ranked: list[str], g_index: dict[str, int],
                   complete: bool = True) -> np.ndarray:
    """Gallery indices of one ranked list, best first: each gallery tracklet at most once, and all of them unless
    the list is a top-k list (`complete=False`), whose unlisted tracklets follow in gallery order."""
    order = np.fromiter((g_index.get(n, -1) for n in ranked), dtype=np.int64, count=len(ranked))
    if (order < 0).any():
        unknown = ranked[int(np.argmax(order < 0))]
        raise FarreidError(f"{path}, line {line}: unknown {case} gallery tracklet {unknown!r} in the ranked list "
                           f"of query {query!r}")
    counts = np.bincount(order, minlength=len(g_index))
    if (counts > 1).any():
        twice = ranked[int(np.argmax(counts[order] > 1))]
        raise FarreidError(f"{path}, line {line}: gallery tracklet {twice!r} appears twice in the ranked list of "
                           f"query {query!r}")
    if not order.size:
        raise FarreidError(f"{path}, line {line}: the ranked list of query {query!r} is empty")
    if not complete:
        return np.concatenate([order, np.flatnonzero(counts == 0)])
    if len(order) != len(g_index):
        missing = next(n for n, i in g_index.items() if counts[i] == 0)
        raise FarreidError(
            f"{path}, line {line}: the ranked list of query {query!r} has {len(order)} of the {len(g_index)} {case} "
            f"gallery tracklets (e.g. {missing!r} is missing); rank each gallery tracklet exactly once"
        )
    return order


def score_submission(
    path: str | Path,
    truth: list,
    options: EvalConfig | None = None,
) -> dict[str, RankResult]:
    """Metrics of a submission CSV against labelled protocols (same definitions as `evaluate_rank`).

    `truth` holds one item per case with `.name` and `.query` / `.gallery` sets of `names`, `pids`, `camids`
    (`ProtocolData`, or `farreid.eval.labels.LabelledProtocol`). Every query of a case must have exactly one row,
    ranking every gallery tracklet of its case exactly once; rows of a case without labels are an error.
    `options` gives the junk rule, max_rank, map_at and ap_interpolation (`eval.*`); by default the schema's with
    the challenge scorer's junk rule, "tracklet" (`ap_interpolation="trapezoid"` is its AP).
    A top-k file (AG-VPReID form) needs the tracklet junk rule (its leaderboard knows no cameras); its results
    carry `depth`, the shortest list, beyond which they are NaN.
    """
    options = options or EvalConfig(junk="tracklet")
    path = Path(path)
    rows, top_k = read_submission_rows(path)
    by_name = {data.name: data for data in truth}
    if top_k:
        if options.junk != "tracklet":
            raise FarreidError(f"{path} is a top-k list without cameras (AG-VPReID form): score it with "
                               "eval.junk=tracklet")
        rows = _with_cases(path, rows, truth)
    extra = sorted({case for _, case, _, _ in rows} - set(by_name))
    if extra:
        raise FarreidError(f"{path} has rows for {', '.join(extra)}, which the labels do not cover "
                           f"(they have {', '.join(by_name) or 'nothing'})")
    results: dict[str, RankResult] = {}
    for data in truth:
        if not _is_labelled(data.query) or not _is_labelled(data.gallery):
            raise FarreidError(f"cannot score {data.name}: its ground truth has unknown (-1) identities")
        q_index = _index(list(data.query.names), f"{data.name} query set")
        g_index = _index(list(data.gallery.names), f"{data.name} gallery set")
        entries = [(line, q, ranked) for line, case, q, ranked in rows if case == data.name]
        if not entries:
            raise FarreidError(f"{path}: no rows for {data.name} ({CASE_NAMES.get(data.name, 'unknown case')}); "
                               f"each of its {len(q_index)} queries must be listed exactly once (to score only some "
                               "cases, pick them with data.protocol or leave the others out of the labels file)")
        listed: dict[str, int] = {}
        positions = np.empty((len(entries), len(g_index)), dtype=np.float64)
        for r, (line, query, ranked) in enumerate(entries):
            if query not in q_index:
                raise FarreidError(f"{path}, line {line}: unknown {data.name} query tracklet {query!r}")
            if query in listed:
                raise FarreidError(f"{path}, line {line}: {data.name} query {query!r} is listed again (first on line "
                                   f"{listed[query]}); each query exactly once")
            listed[query] = line
            order = _gallery_order(path, line, data.name, query, ranked, g_index, complete=not top_k)
            positions[r, order] = np.arange(len(g_index))
        if len(listed) != len(q_index):
            missing = next(q for q in q_index if q not in listed)
            raise FarreidError(f"{path}: {data.name} query {missing!r} has no row; each of its {len(q_index)} "
                               "queries must be listed exactly once")
        rows_q = np.array([q_index[q] for _, q, _ in entries])
        q_pids, q_camids = np.asarray(data.query.pids)[rows_q], np.asarray(data.query.camids)[rows_q]
        results[data.name] = evaluate_rank(
            positions, q_pids, np.asarray(data.gallery.pids), q_camids, np.asarray(data.gallery.camids),
            junk=JunkRule(options.junk), q_names=[q for _, q, _ in entries], g_names=list(data.gallery.names),
            max_rank=options.max_rank, map_at=tuple(options.map_at), ap_interpolation=options.ap_interpolation,
        )
        if top_k:  # ranks down to the shortest list are known (one fewer where a query lists its own tracklet)
            depth = min(len(ranked) - (query in ranked) for _, query, ranked in entries)
            results[data.name].depth = depth if depth < len(g_index) else None
    return results


def _with_cases(path: Path, rows: list, truth: list) -> list:
    """Top-k rows with the case of each query, found from its name in the labels."""
    case_of: dict[str, str] = {}
    for data in truth:
        for name in data.query.names:
            if name in case_of:
                raise FarreidError(f"query tracklet {name!r} is in the labels of both {case_of[name]} and {data.name}; "
                                   "a file without a case column cannot be scored against both")
            case_of[name] = data.name
    out = []
    for line, _, query, ranked in rows:
        if query not in case_of:
            raise FarreidError(f"{path}, line {line}: unknown query tracklet {query!r} (in no case of the labels)")
        out.append((line, case_of[query], query, ranked))
    return out


def scored_result(results: dict[str, RankResult], truth: list, settings: dict) -> EvaluationResult:
    """The scores of `score_submission` as an `EvaluationResult` (the table and metrics.json of `farreid eval`)."""
    protocols = [ProtocolResult(d.name, len(d.query.names), len(d.gallery.names), results[d.name],
                                np.zeros((len(d.query.names), 0), dtype=np.int64)) for d in truth]
    return EvaluationResult(protocols, settings)
