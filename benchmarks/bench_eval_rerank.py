"""k-reciprocal re-ranking speed and memory: farreid.eval against torchreid's re_ranking, same inputs, same run.

    python benchmarks/bench_eval_rerank.py              # MARS size (1980 + 9330): torchreid and ours, best of 2 / 3
    python benchmarks/bench_eval_rerank.py --large      # + 3000 + 20000 (ours; torchreid quoted: 121 s, 11.9 GiB)
    python benchmarks/bench_eval_rerank.py --msmt       # + MSMT17 size (11659 + 82161), re-ranking + evaluation

Inputs: clustered features (dim 512), L2-normalised; torchreid gets the Euclidean distance matrices q_g, q_q,
g_g computed from them (so both compute the same definition). Ours runs (a) on the same three matrices (like
for like: matrices in, whole q x g matrix out) and (b) end to end from features, streaming re-ranked rows into
the metrics; (b) is compared with torchreid's time plus that of computing its three matrices. Peak memory is
the process's resident peak during the measured step (inputs included). Every case runs in its own process;
results in benchmarks/results/bench_eval_rerank.json (and bench_eval_rerank_msmt17.json for --msmt).
Agreement with torchreid is reported with the rows where torchreid's own float32 values tie at a neighbour-list
cut (there numpy's sort order is arbitrary, so any implementation may legitimately pick other neighbours).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench_eval_common import clustered, emit, machine, measure, run_best, run_isolated, save, torchreid_module

# noise 2.5 in 512 dimensions gives mAP ~0.5 before re-ranking: neighbour sets as messy as a real model's
SIZES = {
    "mars": dict(nq=1980, ng=9330, num_ids=625, dim=512, noise=2.5),
    "large": dict(nq=3000, ng=20000, num_ids=1500, dim=512, noise=2.5),
    "msmt17": dict(nq=11659, ng=82161, num_ids=3060, dim=512, noise=2.5),
}
QUOTED = {
    "torchreid:large": {"wall_s": 121.0, "peak_rss_gib": 11.9, "source": "issue 8 brief, this machine type"},
    "torchreid:msmt17": {"peak_rss_gib": 190.0, "source": "issue 8 brief: would need ~190 GiB (not runnable)"},
}
PARAMS = dict(k1=20, k2=6, lambda_value=0.3)


def _features(size: str) -> dict:
    d = clustered(**SIZES[size], cams=15 if size == "msmt17" else 6)
    d["qf"], d["gf"] = F.normalize(d["qf"], dim=1), F.normalize(d["gf"], dim=1)
    return d


def _matrices(d: dict):
    from farreid.eval import distance_matrix

    return tuple(distance_matrix(a, b, "euclidean").numpy() for a, b in ((d["qf"], d["gf"]), (d["qf"], d["qf"]),
                                                                         (d["gf"], d["gf"])))


def boundary_ties(size: str) -> dict:
    """Rows whose neighbour lists end inside a run of equal values of torchreid's float32 normalised matrix.

    There numpy's argsort order is arbitrary, so any implementation may pick other neighbours than torchreid's.
    """
    q_g, q_q, g_g = _matrices(_features(size))
    d = np.concatenate([np.concatenate([q_q, q_g], 1), np.concatenate([q_g.T, g_g], 1)], 0)
    d = np.power(d, 2).astype(np.float32)
    d = np.transpose(1.0 * d / np.max(d, axis=0))
    cuts = sorted({PARAMS["k1"] + 1, int(np.around(PARAMS["k1"] / 2.0)) + 1, PARAMS["k2"]})
    head = np.partition(d, max(cuts) + 1, axis=1)[:, : max(cuts) + 2]
    head.sort(axis=1)
    rows = {int(r) for k in cuts for r in np.nonzero(head[:, k - 1] == head[:, k])[0]}
    return {"rows_with_boundary_ties": len(rows), "cuts": cuts}


def case(name: str, size: str, dump: str | None) -> dict:
    if name == "ties":
        return boundary_ties(size)
    d = _features(size)
    if name == "torchreid":
        (q_g, q_q, g_g), dist_stats = measure(lambda: _matrices(d))
        rerank = torchreid_module("utils", "rerank.py")
        out, stats = measure(lambda: rerank.re_ranking(q_g, q_q, g_g, **PARAMS))
        stats["distances"] = {k: dist_stats[k] for k in ("wall_s", "cpu_s")}
    elif name == "farreid-matrices":
        from farreid.eval import re_ranking

        q_g, q_q, g_g = _matrices(d)
        out, stats = measure(lambda: re_ranking(q_g, q_q, g_g, **PARAMS).numpy())
    else:  # farreid-features: re-ranking streamed into the metrics, nothing q x g kept
        from farreid.eval import RankAccumulator, rerank_feature_chunks

        def run():
            acc = RankAccumulator(d["qp"], d["gp"], d["qc"], d["gc"], max_rank=50)
            for start, block in rerank_feature_chunks(d["qf"], d["gf"], **PARAMS, normalize=False):
                acc.update(start, block)
            return acc.result()

        result, stats = measure(run)
        from farreid.eval import distance_chunks, evaluate_rank

        plain = evaluate_rank(distance_chunks(d["qf"], d["gf"], "euclidean"), d["qp"], d["gp"], d["qc"], d["gc"])
        return {**stats, "mAP_before": plain.mAP, "R1_before": plain.rank(1), "mAP_after_rerank": result.mAP,
                "R1_after_rerank": result.rank(1), "note": "end to end from features: neighbours, re-ranking, metrics"}
    if dump:
        np.save(dump, np.asarray(out, dtype=np.float32))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="mars", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--large", action="store_true", help="also 3000 + 20000 (ours)")
    parser.add_argument("--msmt", action="store_true", help="also MSMT17 size, 93,820 items (ours; minutes, GiBs)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.case:
        emit(case(args.case, args.size, args.dump))
        return
    script = Path(__file__)
    out = {"machine": machine(), "sizes": SIZES, "params": PARAMS, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        dumps = {n: str(Path(tmp) / f"{n}.npy") for n in ("torchreid", "farreid-matrices")}
        for name, repeats in (("torchreid", 2), ("farreid-matrices", 3), ("farreid-features", 3)):
            extra = ["--size", "mars"] + (["--dump", dumps[name]] if name in dumps else [])
            out["cases"][f"{name}:mars"] = run_best(script, name, extra, repeats)
            print(f"MARS size {name:17s} {out['cases'][f'{name}:mars']}", flush=True)
        theirs, ours = np.load(dumps["torchreid"]), np.load(dumps["farreid-matrices"])
        gap = np.abs(theirs - ours)
        d = _features("mars")
        from farreid.eval import evaluate_rank

        agreement = {
            "max_abs_diff": float(gap.max()),
            "share_of_entries_above_1e-5": float((gap > 1e-5).mean()),
            "mAP_torchreid_output": evaluate_rank(theirs, d["qp"], d["gp"], d["qc"], d["gc"]).mAP,
            "mAP_farreid_output": evaluate_rank(ours, d["qp"], d["gp"], d["qc"], d["gc"]).mAP,
            **run_isolated(script, "ties", ["--size", "mars"]),
        }
        del theirs, ours, gap
    tr = out["cases"]["torchreid:mars"]
    # like for like: the same three matrices in, the whole q x g re-ranked matrix out
    # end to end: torchreid's time includes computing its three distance matrices from the features
    for name, extra in (("farreid-matrices", {"wall_s": 0.0, "cpu_s": 0.0}), ("farreid-features", tr["distances"])):
        ours = out["cases"][f"{name}:mars"]
        out["cases"][f"ratio:{name}:mars"] = {
            "speedup_wall": round((tr["wall_s"] + extra["wall_s"]) / ours["wall_s"], 1),
            "speedup_cpu": round((tr["cpu_s"] + extra["cpu_s"]) / ours["cpu_s"], 1),
            "peak_memory_fraction": round(ours["peak_rss_gib"] / tr["peak_rss_gib"], 3),
        }
        print(f"  {name}: {out['cases'][f'ratio:{name}:mars']}", flush=True)
    out["cases"]["agreement_with_torchreid:mars"] = agreement
    print(f"  agreement with torchreid: {agreement}", flush=True)
    if args.large:
        out["cases"]["farreid-features:large"] = run_best(script, "farreid-features", ["--size", "large"], 2)
        out["cases"]["torchreid:large (quoted, not run)"] = QUOTED["torchreid:large"]
        print(f"large farreid-features {out['cases']['farreid-features:large']}", flush=True)
    print(f"saved {save('bench_eval_rerank', out)}")
    if args.msmt:  # its own file: the heavy run is repeated rarely, the MARS comparison often
        msmt = {"machine": machine(), "sizes": {"msmt17": SIZES["msmt17"]}, "params": PARAMS, "cases": {
            "farreid-features:msmt17": run_isolated(script, "farreid-features", ["--size", "msmt17"], timeout=4 * 3600),
            "torchreid:msmt17 (quoted, not run)": QUOTED["torchreid:msmt17"],
        }}
        print(f"msmt17 farreid-features {msmt['cases']['farreid-features:msmt17']}", flush=True)
        print(f"saved {save('bench_eval_rerank_msmt17', msmt)}")


if __name__ == "__main__":
    main()
