"""Data-layer figures: frame decode throughput (PIL variants), index time for 10k tracklets, augmentation throughput.

    python benchmarks/bench_data.py [--tracklets 10000] [--frames 16]

Prints a table and writes benchmarks/results/bench_data.json. Figures are ratios against the peer measured in
the same process (plain PIL decode; restricted-random clip augmentation without degradation).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from farreid.config.schema import AugConfig  # noqa: E402
from farreid.data import ClipAugment, build_dataset  # noqa: E402
from farreid.data.decode import decode_frame  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _rate(fn, n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def bench_decode(workdir: Path) -> dict:
    """Frames/s to decode + resize to 256x128, for a large ground crop and a small aerial crop."""
    rng = np.random.default_rng(0)
    out = {}
    sizes = {"ground 1024x512": (512, 1024), "ground 384x192": (192, 384), "aerial 48x24": (24, 48)}
    for label, (w, h) in sizes.items():
        base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)
        paths = []
        for i in range(50):
            p = workdir / f"{label.replace(' ', '_')}_{i}.jpg"
            img.save(p, quality=90)
            paths.append(str(p))

        def plain():
            for p in paths:
                with Image.open(p) as im:
                    np.asarray(im.convert("RGB").resize((128, 256), Image.Resampling.BICUBIC))

        def ours(interp="bicubic"):
            return lambda: [decode_frame(p, (256, 128), interp) for p in paths]

        base_rate = _rate(plain, len(paths))
        row = {"pil_plain": base_rate, "ours_draft_bicubic": _rate(ours(), len(paths)),
               "ours_draft_bilinear": _rate(ours("bilinear"), len(paths))}
        try:
            import simplejpeg

            data = [Path(p).read_bytes() for p in paths]

            def simple():
                for d in data:
                    arr = simplejpeg.decode_jpeg(d, colorspace="RGB", min_height=256, min_width=128)
                    np.asarray(Image.fromarray(arr).resize((128, 256), Image.Resampling.BICUBIC))

            row["simplejpeg"] = _rate(simple, len(paths))
        except ImportError:
            pass
        out[label] = {k: round(v, 1) for k, v in row.items()} | {
            k + "_vs_plain": round(v / base_rate, 2) for k, v in row.items() if k != "pil_plain"}
    return out


def bench_index(workdir: Path, tracklets: int, frames: int) -> dict:
    """Seconds to index a DetReIDX tree of `tracklets` x `frames` files (hard links of one JPEG: no pixels read)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 16)).save(buf, format="JPEG")
    root = workdir / "tree"
    links = 0
    start = time.perf_counter()
    per_split = {"train": tracklets // 2, "case1_aerial_to_ground/query": tracklets // 4,
                 "case1_aerial_to_ground/gallery": tracklets - tracklets // 2 - tracklets // 4}
    for split, count in per_split.items():
        for i in range(count):
            pid = i // 20
            folder = root / split / f"{pid:04d}" / f"{pid:04d}_{i:05d}"
            folder.mkdir(parents=True)
            for f in range(frames):  # unpadded frame numbers: the natural-order path
                name = f"{pid:04d}_23_10_2024_09_18_5.8_10_30_3_0_1_1_0_-1_-1_6_0_0_6_152_178_S1_{f}.jpg"
                source = workdir / f"src{links // 50000}.jpg"  # file systems cap the links of one file
                if links % 50000 == 0:
                    source.write_bytes(buf.getvalue())
                os.link(source, folder / name)
                links += 1
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ds = build_dataset("detreidx", root, protocol="A2G")
    index_seconds = time.perf_counter() - start
    count = len(ds.train) + len(ds.protocol("A2G").query) + len(ds.protocol("A2G").gallery)
    return {"tracklets": count, "frames": count * frames, "tree_build_s": round(build_seconds, 2),
            "index_s": round(index_seconds, 3), "tracklets_per_s": round(count / index_seconds)}


def bench_augment() -> dict:
    """Clips/s of ClipAugment on (8, 3, 256, 128) uint8 clips, with and without the far-distance degradation."""
    clip = torch.randint(0, 256, (8, 3, 256, 128), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    n = 20
    plain = ClipAugment(AugConfig(degrade_prob=0.0))
    full = ClipAugment(AugConfig(degrade_prob=1.0, jitter_prob=1.0, erase_prob=1.0))
    base = _rate(lambda: [plain(clip, "ground", g) for _ in range(n)], n)
    heavy = _rate(lambda: [full(clip, "ground", g) for _ in range(n)], n)
    return {"clips_per_s_no_degrade": round(base, 1), "clips_per_s_all_ops": round(heavy, 1),
            "all_ops_vs_no_degrade": round(heavy / base, 2), "frames_per_clip": 8, "size": "256x128"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracklets", type=int, default=10000)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="farreid-bench-data-"))
    try:
        results = {
            "torch_threads": 1,
            "decode_frames_per_s": bench_decode(workdir),
            "index": bench_index(workdir, args.tracklets, args.frames),
            "augment": bench_augment(),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_data.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
