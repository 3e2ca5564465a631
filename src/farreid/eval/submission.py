"""The VReID-XFD challenge submission CSV, and a local scorer for such files.

Format: header `row_id,case,query_tracklet,ranked_gallery_tracklets`; cases in the order Case 1 (A2G), Case 2
(G2A), Case 3 (A2A); inside a case the queries sorted by (pid, tracklet name) (by name alone when labels are
anonymised, pid -1); `ranked_gallery_tracklets` = every gallery tracklet name of the case, best first,
space-separated; `row_id` counts from 1 across all cases.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from farreid.errors import FarreidError
from farreid.eval.metrics import RankResult, evaluate_rank
from farreid.eval.protocols import CASE_ORDER, ProtocolData
from farreid.utils.io import atomic_write_text

CASE_NAMES = {
    "A2G": "Case 1: Aerial to Ground",
    "G2A": "Case 2: Ground to Aerial",
    "A2A": "Case 3: Aerial to Aerial",
}
HEADER = ("row_id", "case", "query_tracklet", "ranked_gallery_tracklets")


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
            writer.writerow([row_id, CASE_NAMES[name], q.names[i], " ".join(gallery_names[ranking[i]])])
    atomic_write_text(path, out.getvalue())
    return row_id


def read_submission(path: str | Path) -> dict[str, list[tuple[str, list[str]]]]:
    """{protocol name: [(query tracklet, ranked gallery tracklets), ...]} in file order, checking the format."""
    path = Path(path)
    if not path.is_file():
        raise FarreidError(f"submission CSV not found: {path}")
    by_case = {v: k for k, v in CASE_NAMES.items()}
    out: dict[str, list[tuple[str, list[str]]]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise FarreidError(f"{path}: header must be {','.join(HEADER)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(HEADER):
                raise FarreidError(f"{path}, line {line}: expected {len(HEADER)} fields, got {len(row)}")
            case = by_case.get(row[1])
            if case is None:
                raise FarreidError(f"{path}, line {line}: unknown case {row[1]!r}")
            out.setdefault(case, []).append((row[2], row[3].split()))
    return out


def _index(names: list[str], what: str) -> dict[str, int]:
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise FarreidError(f"{what} has duplicate tracklet names; rankings by name would be ambiguous")
    return index


def score_submission(
    path: str | Path,
    truth: list[ProtocolData],
    junk: str = "tracklet",
    max_rank: int = 50,
    map_at: tuple[int, ...] = (10,),
) -> dict[str, RankResult]:
    """Metrics of a submission CSV against labelled protocols (same definitions as `evaluate_rank`).

    Default junk rule "tracklet" is the challenge scorer's. Every query of a case must appear exactly once and
    rank every gallery tracklet of its case exactly once.
    """
    rows = read_submission(path)
    results: dict[str, RankResult] = {}
    for data in truth:
        if data.name not in rows:
            raise FarreidError(f"{path}: no rows for {data.name} ({CASE_NAMES.get(data.name, 'unknown case')})")
        if not data.labelled:
            raise FarreidError(f"cannot score {data.name}: its ground truth has unknown (-1) identities")
        q_index = _index(data.query.names, f"{data.name} query set")
        g_index = _index(data.gallery.names, f"{data.name} gallery set")
        entries = rows[data.name]
        seen = [q_index.get(qn) for qn, _ in entries]
        if None in seen or len(set(seen)) != len(seen) or len(seen) != len(q_index):
            raise FarreidError(
                f"{path}: {data.name} must list each of its {len(q_index)} queries exactly once "
                f"(got {len(entries)} rows, {len(set(s for s in seen if s is not None))} known distinct queries)"
            )
        positions = np.empty((len(entries), len(g_index)), dtype=np.float64)
        for r, (qn, ranked) in enumerate(entries):
            order = [g_index.get(n, -1) for n in ranked]
            if len(order) != len(g_index) or -1 in order or len(set(order)) != len(order):
                raise FarreidError(
                    f"{path}: {data.name} query {qn!r} must rank each of the {len(g_index)} gallery tracklets once"
                )
            positions[r, order] = np.arange(len(order))
        q = data.query.subset(np.array(seen))
        results[data.name] = evaluate_rank(
            positions, q.pids, data.gallery.pids, q.camids, data.gallery.camids, junk=junk,
            q_names=q.names, g_names=data.gallery.names, max_rank=max_rank, map_at=map_at,
        )
    return results
