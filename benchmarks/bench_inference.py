"""Inference figures: ReIDModel.embed throughput (fp32 vs bf16 autocast on the CPU), PyTorch vs onnxruntime on the
same exported graph, and a streamed search of a sharded gallery (time, peak memory).

    python benchmarks/bench_inference.py [--models demo vitb16] [--repeats 2] [--gallery-rows 1000000]
                                         [--threads 2] [--skip-onnx] [--skip-search] [--out bench_inference]

Models have random weights: `demo` is the demo_tiny recipe (tiny ViT, 128x64, 8 frames), `vitb16` the
detreidx_vitb16 recipe (ViT-B/16 at 256x128 with VSLA adapters and 9-block prompts, 16 frames). Tracklets are
given as uint8 (N, T, 3, H, W) tensors at the model's size, so frame decoding is not measured; flip TTA is off
(it doubles the work). fp32 and bf16 (and PyTorch and onnxruntime) run alternately, best of `--repeats`, so load
from other processes hits both alike; the CPU pressure (Linux PSI) before each section is recorded.
The search section writes a sharded float32 gallery to a temporary folder and searches it in a fresh process,
whose peak resident memory (VmHWM) is reported beside the gallery's size on disk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # this checkout's farreid
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py

from common import best_time, peak_rss_gib, save  # noqa: E402
from farreid.config import load_config  # noqa: E402
from farreid.data.transforms import normalize  # noqa: E402
from farreid.inference import ReIDModel  # noqa: E402
from farreid.models import FarReID  # noqa: E402

MODELS = {"demo": ("demo_tiny", 64), "vitb16": ("detreidx_vitb16", 8)}  # recipe, tracklets a timing
SIZES = {"demo_tiny": ["model.image_size=[128,64]"]}  # the size the published figures were measured at


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which a runnable task waited for a CPU (Linux PSI), in percent."""
    try:
        return float(Path("/proc/pressure/cpu").read_text().split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def wait_for_quiet(threshold: float = 20.0, max_wait_s: float = 600.0) -> float | None:
    """Wait (up to max_wait_s) until CPU pressure is below threshold; returns the pressure when the case starts."""
    deadline = time.monotonic() + max_wait_s
    pressure = cpu_pressure()
    while pressure is not None and pressure > threshold and time.monotonic() < deadline:
        time.sleep(10)
        pressure = cpu_pressure()
    return pressure


def build(name: str, precision: str) -> ReIDModel:
    recipe, _ = MODELS[name]
    cfg = load_config(recipe, ["model.pretrained=''", "data.workers=0", *SIZES.get(recipe, [])])
    torch.manual_seed(0)
    net = FarReID(cfg.model, num_classes=100, num_keys=3)
    return ReIDModel(net, cfg, device="cpu", precision=precision, flip=False)


def bench_embed(name: str, repeats: int) -> dict:
    models = {p: build(name, p) for p in ("fp32", "bf16")}
    fp32 = models["fp32"]
    n, t, (h, w) = MODELS[name][1], fp32.num_frames, fp32.size
    tracklets = torch.randint(0, 256, (n, t, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    platforms = ["aerial" if i % 2 else "ground" for i in range(n)]
    out, seconds = {}, {p: float("inf") for p in models}
    for model in models.values():
        out[model.precision.name] = model.embed(tracklets[:2], platform=platforms[:2])  # warm-up
    for _ in range(repeats):
        for p, model in models.items():
            seconds[p] = min(seconds[p], best_time(lambda: out.__setitem__(p, model.embed(tracklets, platform=platforms)), 1))
    cosine = float((out["fp32"] * out["bf16"]).sum(1).min())
    row = {"model": name, "input": f"{h}x{w}", "frames": t, "tracklets": n, "batch_size": fp32.batch_size,
           "dim": fp32.dim, "min_cosine_bf16_vs_fp32": round(cosine, 5)}
    for p, s in seconds.items():
        row[f"{p}_tracklets_per_s"] = round(n / s, 2)
        row[f"{p}_frames_per_s"] = round(n * t / s, 1)
    row["bf16_speedup"] = round(seconds["fp32"] / seconds["bf16"], 2)
    return row


def bench_onnx(name: str, repeats: int, folder: Path) -> dict:
    import onnxruntime as ort

    from farreid.inference.export import EmbeddingGraph, export_onnx

    model = build(name, "fp32")
    n, t, (h, w) = MODELS[name][1], model.num_frames, model.size
    report = export_onnx(model, folder / f"{name}.onnx", flip=False, check_shapes=((2, t),))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(report.path), options, providers=["CPUExecutionProvider"])
    graph = EmbeddingGraph(model.model, flip=False).eval()
    frames = torch.randint(0, 256, (n, t, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    clip = normalize(frames.float().flatten(0, 1) / 255).view(n, t, 3, h, w)
    keys, mask = torch.arange(n) % 2, torch.ones(n, t, dtype=torch.bool)
    b = model.batch_size
    batches = [(clip[i : i + b], keys[i : i + b], mask[i : i + b]) for i in range(0, n, b)]

    def run_torch():
        with torch.inference_mode():
            return torch.cat([graph(*batch) for batch in batches]).numpy()

    def run_ort():
        return np.concatenate([session.run(None, {"clip": c.numpy(), "keys": k.numpy(), "mask": m.numpy()})[0]
                               for c, k, m in batches])

    results = {"torch": run_torch(), "onnxruntime": run_ort()}  # warm-up
    seconds = {"torch": float("inf"), "onnxruntime": float("inf")}
    for _ in range(repeats):
        for engine, fn in (("torch", run_torch), ("onnxruntime", run_ort)):
            start = time.perf_counter()
            results[engine] = fn()
            seconds[engine] = min(seconds[engine], time.perf_counter() - start)
    return {
        "model": name, "tracklets": n, "frames": t, "export_seconds": round(report.export_seconds, 1),
        "onnx_mb": round(report.size_mb, 1), "export_check_max_abs_diff": report.max_abs_diff,
        "max_abs_diff": float(np.abs(results["torch"] - results["onnxruntime"]).max()),
        "torch_fp32_tracklets_per_s": round(n / seconds["torch"], 2),
        "onnxruntime_fp32_tracklets_per_s": round(n / seconds["onnxruntime"], 2),
        "onnxruntime_speedup": round(seconds["torch"] / seconds["onnxruntime"], 2),
    }


def write_gallery(folder: Path, rows: int, dim: int, shard_rows: int = 4096) -> float:
    """A sharded, L2-normalised random gallery in the extract format (extract's default 4096 rows a shard);
    returns its size in GiB."""
    from farreid.eval.features import meta_row, shard_file, write_feature_shard, write_manifest, write_meta_table

    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    shards = []
    for start in range(0, rows, 65536):
        block = F.normalize(torch.randn(min(65536, rows - start), dim, generator=g), dim=1)
        for offset in range(0, block.shape[0], shard_rows):
            shards.append(shard_file(len(shards)))
            write_feature_shard(folder / shards[-1], block[offset : offset + shard_rows])
    write_meta_table(folder / "meta.csv", (meta_row(f"t{i:07d}", i % 5000, i % 7, "ground", np.nan, np.nan, (), 16)
                                           for i in range(rows)))
    write_manifest(folder, shards, rows, dim, {"producer": "bench_inference"})
    return sum(p.stat().st_size for p in folder.iterdir()) / 2**30


def search_worker(folder: str, queries: int, k: int) -> None:
    """Runs in a fresh process: search the gallery, print time and this process's peak memory as JSON."""
    from farreid.eval import FeatureSet
    from farreid.inference.search import search_gallery

    dim = json.loads((Path(folder) / "manifest.json").read_text())["dim"]
    q = F.normalize(torch.randn(queries, dim, generator=torch.Generator().manual_seed(1)), dim=1)
    fs = FeatureSet(q, [f"q{i}" for i in range(queries)], [-1] * queries, [0] * queries, ["ground"] * queries)
    start = time.perf_counter()
    results = search_gallery(fs, folder, k)
    print(json.dumps({"queries": queries, "k": k, "seconds": round(time.perf_counter() - start, 2),
                      "peak_rss_gib": round(peak_rss_gib(), 3), "top1_score": results.hits[0][0].score}))


def bench_search(rows: int, dim: int, folder: Path) -> dict:
    start = time.perf_counter()
    size = write_gallery(folder / "gallery", rows, dim)
    out = {"gallery_rows": rows, "dim": dim, "gallery_gib_on_disk": round(size, 2),
           "write_seconds": round(time.perf_counter() - start, 1), "runs": []}
    for queries in (1, 64):
        done = subprocess.run([sys.executable, __file__, "--search-worker", str(folder / "gallery"), str(queries),
                               "--threads", str(torch.get_num_threads())],
                              capture_output=True, text=True, check=True)
        out["runs"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS), help="none: search only")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gallery-rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--skip-onnx", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--no-wait", action="store_true", help="Do not wait for a quiet machine (dry runs).")
    ap.add_argument("--threads", type=int, default=2, help="torch / onnxruntime intra-op threads.")
    ap.add_argument("--out", default="bench_inference", help="Result name under benchmarks/results/.")
    ap.add_argument("--search-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_wait:
        global wait_for_quiet
        wait_for_quiet = cpu_pressure  # noqa: F811  (record the pressure, do not wait)
    if args.search_worker:
        search_worker(args.search_worker[0], int(args.search_worker[1]), 20)
        return
    result: dict = {"threads": args.threads, "embed": [], "onnx": [], "pressure": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            result["pressure"][f"embed_{name}"] = wait_for_quiet()
            result["embed"].append(bench_embed(name, args.repeats))
            print(result["embed"][-1], flush=True)
            if not args.skip_onnx:
                result["pressure"][f"onnx_{name}"] = wait_for_quiet()
                result["onnx"].append(bench_onnx(name, args.repeats, Path(tmp)))
                print(result["onnx"][-1], flush=True)
        if not args.skip_search:
            result["pressure"]["search"] = wait_for_quiet()
            result["search"] = bench_search(args.gallery_rows, args.dim, Path(tmp))
            print(result["search"], flush=True)
    result["pressure"]["end"] = cpu_pressure()
    result["note"] = closing_note(result)
    print(result["note"])
    save(args.out, result)


def closing_note(result: dict) -> str:
    parts = []
    for row in result["embed"]:
        parts.append(f"{row['model']}: {row['fp32_tracklets_per_s']} tracklets/s ({row['fp32_frames_per_s']} frames/s) "
                     f"fp32, {row['bf16_tracklets_per_s']} ({row['bf16_frames_per_s']}) bf16, x{row['bf16_speedup']}")
    for row in result["onnx"]:
        parts.append(f"{row['model']} onnxruntime/PyTorch fp32 x{row['onnxruntime_speedup']} "
                     f"(max abs diff {row['max_abs_diff']:.1e})")
    if "search" in result:
        s = result["search"]
        runs = ", ".join(f"{r['queries']} queries {r['seconds']} s at peak RSS {r['peak_rss_gib']} GiB" for r in s["runs"])
        parts.append(f"search of {s['gallery_rows']} x {s['dim']} ({s['gallery_gib_on_disk']} GiB of shards): {runs}")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
