"""Ranking-metric speed and memory: farreid.eval.evaluate_rank against torchreid's pure-Python evaluate_rank.

    python benchmarks/bench_eval.py            # 2000 x 10000, torchreid and ours (best of 2 and of 5 runs)
    python benchmarks/bench_eval.py --msmt     # + MSMT17 size, ours (results in bench_eval_msmt17.json)

Each run is its own process (separate peak memory). Results: benchmarks/results/bench_eval.json.
torchreid at MSMT17 size (11659 x 82161) is NOT run: it needs ~22 min and ~22 GiB; the figures quoted for it were
measured on this machine type and are stored as such in the JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench_eval_common import clustered, emit, machine, measure, run_best, run_isolated, save, torchreid_module

SMALL = dict(nq=2000, ng=10000, num_ids=700, dim=256, noise=2.0)  # mAP ~0.5
MSMT = dict(nq=11659, ng=82161, num_ids=3060, dim=512, noise=2.5)  # mAP ~0.3
TORCHREID_MSMT_QUOTED = {"wall_s": 22 * 60, "peak_rss_gib": 22.0, "source": "issue 8 brief, this machine type"}


def _small_inputs(kind: str):
    if kind == "random":
        rng = np.random.default_rng(0)
        dist = rng.random((SMALL["nq"], SMALL["ng"]), dtype=np.float32)
        ids = SMALL["num_ids"]
        return dist, rng.integers(0, ids, SMALL["nq"]), rng.integers(0, ids, SMALL["ng"]), \
            rng.integers(0, 6, SMALL["nq"]), rng.integers(0, 6, SMALL["ng"])
    d = clustered(**SMALL)
    from farreid.eval import distance_matrix

    return distance_matrix(d["qf"], d["gf"], "cosine").numpy(), d["qp"], d["gp"], d["qc"], d["gc"]


def case_small(impl: str, kind: str) -> dict:
    dist, qp, gp, qc, gc = _small_inputs(kind)
    if impl == "torchreid":
        rank = torchreid_module("metrics", "rank.py")
        (cmc, mAP), stats = measure(lambda: rank.evaluate_rank(dist, qp, gp, qc, gc, max_rank=50, use_cython=False))
        return {**stats, "mAP": float(mAP), "R1": float(cmc[0])}
    from farreid.eval import evaluate_rank

    result, stats = measure(lambda: evaluate_rank(dist, qp, gp, qc, gc, max_rank=50))
    return {**stats, "mAP": result.mAP, "R1": result.rank(1)}


def case_msmt() -> dict:
    from farreid.eval import distance_chunks, evaluate_rank

    d = clustered(**MSMT, cams=15)

    def run():
        chunks = distance_chunks(d["qf"], d["gf"], "cosine", chunk_size=1024)
        return evaluate_rank(chunks, d["qp"], d["gp"], d["qc"], d["gc"], max_rank=50)

    result, stats = measure(run)
    return {**stats, "mAP": result.mAP, "R1": result.rank(1), "mINP": result.mINP,
            "note": "end to end: cosine distances (dim 512) computed in query chunks, then ranked"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--msmt", action="store_true", help="also MSMT17 size (ours; ~30 s, ~1.5 GiB)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.case:
        if args.case == "msmt":
            emit(case_msmt())
        else:
            impl, kind = args.case.split(":")
            emit(case_small(impl, kind))
        return
    script = Path(__file__)
    out = {"machine": machine(), "size": SMALL, "cases": {}}
    for kind in ("random", "clustered"):
        for impl, repeats in (("torchreid", 2), ("farreid", 5)):
            out["cases"][f"{impl}:{kind}"] = run_best(script, f"{impl}:{kind}", repeats=repeats)
            print(f"2000x10000 {kind:9s} {impl:9s} {out['cases'][f'{impl}:{kind}']}", flush=True)
        tr, ours = out["cases"][f"torchreid:{kind}"], out["cases"][f"farreid:{kind}"]
        out["cases"][f"ratio:{kind}"] = {
            "speedup_wall": round(tr["wall_s"] / ours["wall_s"], 1),
            "speedup_cpu": round(tr["cpu_s"] / ours["cpu_s"], 1),
            "mAP_abs_diff": abs(tr["mAP"] - ours["mAP"]),
        }
        print(f"  speed-up x{out['cases'][f'ratio:{kind}']['speedup_wall']} (wall)", flush=True)
    print(f"saved {save('bench_eval', out)}")
    if args.msmt:
        msmt = {"machine": machine(), "size": MSMT, "cases": {
            "farreid:msmt17": run_isolated(script, "msmt"),
            "torchreid:msmt17 (quoted, not run)": TORCHREID_MSMT_QUOTED,
        }}
        print(f"MSMT17 size farreid {msmt['cases']['farreid:msmt17']}", flush=True)
        print(f"saved {save('bench_eval_msmt17', msmt)}")


if __name__ == "__main__":
    main()
