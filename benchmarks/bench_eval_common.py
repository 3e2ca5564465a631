"""Shared helpers of the evaluation benchmarks: isolated measured runs, synthetic data, torchreid's oracle.

Every measured case runs in a fresh Python process, so its peak memory (VmHWM) is its own, and starts only once
the machine is quiet (CPU pressure, Linux PSI, below 20 % or after 5 min); the pressure before and after is
recorded with each case. The parent script collects one JSON line per case and writes
`benchmarks/results/<name>.json`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GIB = 2**30
sys.path.insert(0, str(HERE.parent / "src"))  # measure this checkout's farreid, not an installed one


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), in percent."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(first.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def wait_for_quiet(threshold: float = 20.0, max_wait_s: float = 300.0, poll_s: float = 10.0) -> float | None:
    """Wait (up to max_wait_s) until CPU pressure is below threshold: other jobs on a 2-core machine make
    multi-threaded timings meaningless. Returns the pressure when the case starts."""
    deadline = time.monotonic() + max_wait_s
    pressure = cpu_pressure()
    while pressure is not None and pressure > threshold and time.monotonic() < deadline:
        time.sleep(poll_s)
        pressure = cpu_pressure()
    return pressure


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so the peak that follows is the measured step's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[], Any]) -> tuple[Any, dict]:
    """Run fn once: wall and CPU seconds, resident memory before, and the peak while it ran (GiB)."""
    peak_reset = reset_peak()
    before = _status_kib("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _status_kib("VmHWM")
    return out, {
        "cpu_pressure_avg10_after": cpu_pressure(),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "rss_before_gib": round(before * 1024 / GIB, 3),
        "peak_rss_gib": round(peak * 1024 / GIB, 3),
        "peak_is_this_step_only": peak_reset,
    }


def clustered(
    num_ids: int, nq: int, ng: int, dim: int, noise: float, seed: int = 0, cams: int = 6
) -> dict[str, Any]:
    """Query/gallery features around identity centres (float32), with pids and camera ids."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_ids, dim, generator=g)
    qp, gp = torch.randint(0, num_ids, (nq,), generator=g), torch.randint(0, num_ids, (ng,), generator=g)
    qf = centers[qp] + noise * torch.randn(nq, dim, generator=g)
    gf = centers[gp] + noise * torch.randn(ng, dim, generator=g)
    return {
        "qf": qf, "gf": gf, "qp": qp.numpy(), "gp": gp.numpy(),
        "qc": torch.randint(0, cams, (nq,), generator=g).numpy(),
        "gc": torch.randint(0, cams, (ng,), generator=g).numpy(),
    }


def torchreid_module(*parts: str):
    """One of torchreid's pure-Python files, executed without the package `__init__` (dependency study §5)."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or spec.origin is None:
        raise SystemExit("torchreid is not installed; install the dev extra to compare against it")
    path = os.path.join(os.path.dirname(spec.origin), "reid", *parts)
    module_spec = importlib.util.spec_from_file_location("_torchreid_" + parts[-1][:-3], path)
    module = importlib.util.module_from_spec(module_spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module_spec.loader.exec_module(module)
    return module


def run_isolated(script: Path, case: str, extra: list[str] | None = None, timeout: float = 3600) -> dict:
    """Run `script --case CASE` in a fresh interpreter and return the JSON object it prints last."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src") + os.pathsep + str(HERE)}
    cmd = [sys.executable, str(script), "--case", case, *(extra or [])]
    before = wait_for_quiet()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{proc.stderr[-3000:]}")
    return {"cpu_pressure_avg10_before": before, **json.loads(proc.stdout.strip().splitlines()[-1])}


def run_best(script: Path, case: str, extra: list[str] | None = None, repeats: int = 3, timeout: float = 3600) -> dict:
    """Best (lowest wall time) of `repeats` isolated runs, as `timeit` takes the minimum: on a shared machine
    the slower runs measure the neighbours. All wall times are kept in the record."""
    runs = [run_isolated(script, case, extra, timeout) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["wall_s"])
    return {**best, "repeats": repeats, "all_wall_s": [r["wall_s"] for r in runs]}


def emit(record: dict) -> None:
    """What a case prints for its parent (the last stdout line)."""
    print(json.dumps(record), flush=True)


def machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_pressure_avg10": cpu_pressure(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "load_average_at_start": load,
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
