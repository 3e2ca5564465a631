"""bf16 against fp32 on this CPU: the matrix product of a ViT-B/16 MLP layer (1024 tokens x 768 -> 3072).

Why `precision=auto` picks fp32 on CPUs without AVX-512-BF16 / AMX, and why a forced bf16 there warns: torch
falls back to a generic bf16 GEMM. One thread, best of `--repeats` after a warm-up; the CPU's model name and
whether it has the fast-bf16 flags are saved beside the ratio.

    python benchmarks/bench_precision_cpu.py [--repeats 3] [--out benchmarks/results/bench_precision_cpu.json]
"""

from __future__ import annotations

import argparse
import time

import torch

from farreid.utils.device import FAST_BF16_FLAGS, cpu_flags, cpu_has_fast_bf16
from farreid.utils.io import atomic_write_json


def best_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/bench_precision_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, w = torch.randn(1024, 768), torch.randn(768, 3072)
    xb, wb = x.bfloat16(), w.bfloat16()
    fp32 = best_seconds(lambda: x @ w, args.repeats)
    bf16 = best_seconds(lambda: xb @ wb, args.repeats)
    result = {
        "cpu": cpu_model(), "fast_bf16_flags": sorted(cpu_flags() & set(FAST_BF16_FLAGS)),
        "cpu_has_fast_bf16": cpu_has_fast_bf16(), "threads": 1, "shape": [1024, 768, 3072],
        "fp32_ms": round(1e3 * fp32, 2), "bf16_ms": round(1e3 * bf16, 2), "bf16_over_fp32": round(bf16 / fp32, 2),
        "torch": torch.__version__,
    }
    print(f"{result['cpu']} (fast bf16: {result['cpu_has_fast_bf16']}): fp32 {result['fp32_ms']} ms, "
          f"bf16 {result['bf16_ms']} ms, bf16 / fp32 = {result['bf16_over_fp32']}x")
    atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
