"""The demo's baselines and ablations over several seeds: mean and standard deviation of every row's mAP and R1.

One demo run is one seed: data, initialisation and sampling all follow it, so one run cannot tell a component's
effect from noise. This script runs `farreid demo` defaults for each seed into its own folder (an interrupted
run continues) and writes benchmarks/results/bench_demo_ablation.json.

    python benchmarks/bench_demo_ablation.py --seeds 0 1 2 --out runs/bench_ablation
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from common import save

CPU_FLAGS = ("avx512_bf16", "amx_bf16", "avx512f", "avx2")


def cpu_description() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return {"model": model, "flags": [f for f in CPU_FLAGS if f in flags]}


def aggregate(summaries: list[dict]) -> list[dict]:
    """Per row and metric: mean and sample standard deviation over the seeds, as fractions."""
    names = [r["name"] for r in summaries[0]["rows"]]
    out = []
    for name in names:
        rows = [next(r for r in s["rows"] if r["name"] == name) for s in summaries]
        entry = {"name": name, "description": rows[0]["description"]}
        for metric in ("mAP", "R1"):
            entry[metric] = {}
            for key in rows[0][metric]:
                values = [r[metric][key] for r in rows]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                entry[metric][key] = {"mean": statistics.fmean(values), "sd": sd, "values": values}
        out.append(entry)
    return out


def table(rows: list[dict]) -> str:
    keys = ("A2G", "G2A", "A2A", "overall")
    lines = ["row".ljust(18) + "".join(f"{k + ' mAP':>16}" for k in keys)]
    for r in rows:
        cells = "".join(f"{100 * r['mAP'][k]['mean']:>9.1f} ± {100 * r['mAP'][k]['sd']:<4.1f}" for k in keys)
        lines.append(r["name"].ljust(18) + cells)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ablation"), help="one sub-folder per seed")
    parser.add_argument("--scale", type=float, default=1.0, help="the demo's --scale")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("give at least two seeds: a standard deviation needs them")
    from farreid.demo import run_demo

    summaries = []
    for seed in args.seeds:
        result = run_demo(args.out / f"seed{seed}", scale=args.scale, seed=seed, console=False)
        summaries.append({**json.loads(result.summary.read_text()), "seed": seed})
        print(f"seed {seed}: {result.seconds / 60:.1f} min\n{result.table}\n", flush=True)
    rows = aggregate(summaries)
    print(table(rows))
    save("bench_demo_ablation", {
        "cpu": cpu_description(), "seeds": args.seeds, "scale": args.scale, "rows": rows,
        "attention": [s["attention"] for s in summaries], "seconds": [s["seconds"] for s in summaries],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
