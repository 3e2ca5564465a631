"""How long `farreid --help` and `farreid data --help` take, as a ratio to `python -c "import torch"`.

Each command runs in a fresh interpreter; the runs of every command alternate (so machine load hits them
alike) and the median of `--repeats` is kept. `--baseline-src DIR` also times another checkout's `src/`
(e.g. `git archive <commit> src | tar -x -C BEFORE`) the same way, for before/after figures.

    python benchmarks/bench_cli_startup.py --repeats 5 --baseline-src BEFORE/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import save

SRC = Path(__file__).resolve().parents[1] / "src"


def wall(args: list[str], src: Path | None) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ folder to time the same way")
    opts = parser.parse_args()
    cases = {"import torch": (["-c", "import torch"], None)}
    trees = {"this checkout": SRC, **({"baseline": opts.baseline_src.resolve()} if opts.baseline_src else {})}
    for tree, src in trees.items():
        for args in (["--help"], ["data", "--help"]):
            cases[f"{tree}: farreid {' '.join(args)}"] = (["-m", "farreid", *args], src)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(opts.repeats):
        for name, (args, src) in cases.items():
            times[name].append(wall(args, src))
    torch_time = statistics.median(times["import torch"])
    rows = {}
    for name, values in times.items():
        median = statistics.median(values)
        rows[name] = {"median_s": round(median, 3), "runs_s": [round(v, 3) for v in values],
                      "ratio_to_import_torch": round(median / torch_time, 3)}
        print(f"{name:<40} median {median:6.2f} s  ({median / torch_time:5.2f} x import torch)")
    pressure = Path("/proc/pressure/cpu")
    save("bench_cli_startup", {"repeats": opts.repeats, "cpu_pressure": pressure.read_text().split("\n")[0]
                               if pressure.is_file() else None, "results": rows})


if __name__ == "__main__":
    main()
