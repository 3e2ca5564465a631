"""Streamed exact top-k search: torch matmul vs faiss flat inner product, same chunks, same process.

    python benchmarks/bench_search.py [--gallery 1000000] [--dim 1024] [--chunk 65536]

The gallery is generated chunk by chunk (never held whole), as it would be read from feature shards.
"""

from __future__ import annotations

import argparse
import torch

from common import best_time, peak_rss_gib, save
from farreid.inference.retrieval import topk_search


def gallery(n: int, dim: int, chunk: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, chunk):
        x = torch.randn(min(chunk, n - start), dim, generator=g)
        yield x / x.norm(dim=1, keepdim=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gallery", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    chunks = list(gallery(args.gallery, args.dim, args.chunk))  # pre-generated so only searching is timed
    rows = []
    for num_queries in (1, 8, 64, 512):
        q = torch.nn.functional.normalize(torch.randn(num_queries, args.dim), dim=1)
        timings, results = {}, {}
        for backend in ("torch", "faiss"):
            timings[backend] = best_time(lambda: results.__setitem__(backend, topk_search(q, chunks, args.k, backend)), 2)
        row = {
            "queries": num_queries,
            "torch_s": round(timings["torch"], 3),
            "faiss_s": round(timings["faiss"], 3),
            "faiss_speedup": round(timings["torch"] / timings["faiss"], 2),
            # exact search both ways: indices may differ only where scores tie to float precision
            "index_agreement": round((results["torch"][1] == results["faiss"][1]).float().mean().item(), 5),
            "max_score_diff": float((results["torch"][0] - results["faiss"][0]).abs().max()),
        }
        rows.append(row)
        print(row)
    save("search", {"gallery": args.gallery, "dim": args.dim, "chunk": args.chunk, "k": args.k,
                    "rows": rows, "peak_rss_gib": round(peak_rss_gib(), 2)})


if __name__ == "__main__":
    main()
