"""Frames/s of farreid's CLIP image tower vs transformers' CLIPVisionModel, same weights, same process.

ViT-B/16 at 256x128 and ViT-L/14 at 252x126, batch 16, fp32 and bf16 autocast, 2 threads, inference mode.
The four runs (ours / theirs x fp32 / bf16) alternate (best of `--repeats` after a warm-up) so that load
from other processes hits all alike. The bf16 / fp32 speed of the tower's own matrix products, timed alone, is
printed beside the tower's: it bounds what bf16 can give on this CPU. transformers is given
`interpolate_pos_encoding=True` (its embedding is square); that resize of a 197x768 table per call is negligible
next to the network.

    python benchmarks/bench_clip.py [--repeats 4] [--models ViT-B/16 ViT-L/14] [--out benchmarks/results/bench_clip.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

import torch

from farreid.models.clip import VisionTower, clip_config, hf_to_openai, resize_pos_embed
from farreid.utils.io import atomic_write_json

SIZES = {"ViT-B/16": (256, 128), "ViT-L/14": (252, 126)}


def build_pair(name: str, size: tuple[int, int]):
    """A random transformers CLIPVisionModel and our tower holding the same weights."""
    import transformers

    spec = clip_config(name).vision
    config = transformers.CLIPVisionConfig(
        hidden_size=spec.width, intermediate_size=spec.mlp_width, num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads, image_size=spec.image_size, patch_size=spec.patch_size,
        hidden_act="quick_gelu",
    )
    theirs = transformers.CLIPVisionModel(config).eval()
    state = hf_to_openai({f"vision_model.{k}": v for k, v in theirs.state_dict().items()})
    visual = {k[len("visual."):]: v for k, v in state.items()}
    ours = VisionTower.from_spec(spec, image_size=size).eval()
    visual["positional_embedding"] = resize_pos_embed(visual["positional_embedding"], (spec.grid,) * 2, ours.grid)
    visual["proj"] = ours.proj.detach().clone()
    ours.load_state_dict(visual, strict=True)
    return ours, theirs


def time_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_run(forward, precision: str):
    """`forward()` as a warmed-up inference call, in fp32 or under bf16 autocast."""
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

    def run():
        with torch.inference_mode(), ctx():
            forward()

    run()  # warm-up
    return run


def gemm_ceiling(tower, rows: int, repeats: int) -> float:
    """bf16 / fp32 speed of the tower's own linear layers (rows = batch x tokens), timed alone: the most
    that bf16 can give the whole tower, since everything else in it gains less."""
    width, mlp = tower.width, tower.transformer.resblocks[0].mlp.c_fc.out_features
    shapes = [(width, 3 * width), (width, width), (width, mlp), (mlp, width)]
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        calls = [(torch.randn(rows, k, dtype=dtype), torch.randn(n, k, dtype=dtype), torch.randn(n, dtype=dtype))
                 for k, n in shapes]

        def run():
            with torch.inference_mode():
                for x, w, b in calls:
                    torch.nn.functional.linear(x, w, b)

        run()
        times[dtype] = min(time_call(run) for _ in range(repeats))
    return times[torch.float32] / times[torch.bfloat16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/bench_clip.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for name in args.models:
        size = SIZES[name]
        ours, theirs = build_pair(name, size)
        images = torch.randn(args.batch, 3, *size)
        with torch.inference_mode():
            diff = (ours(images).pooled - theirs(pixel_values=images, interpolate_pos_encoding=True).pooler_output)
        row = {"model": name, "input": f"{size[0]}x{size[1]}", "batch": args.batch, "max_abs_diff_fp32": diff.abs().max().item()}
        forwards = {"ours": lambda: ours(images),
                    "transformers": lambda: theirs(pixel_values=images, interpolate_pos_encoding=True)}
        runs = {(who, precision): make_run(forward, precision)
                for precision in ("fp32", "bf16") for who, forward in forwards.items()}
        best = {key: float("inf") for key in runs}
        for _ in range(args.repeats):  # all four alternate, so background load affects each alike
            for key, run in runs.items():
                best[key] = min(best[key], time_call(run))
        for precision in ("fp32", "bf16"):
            t_ours, t_theirs = best["ours", precision], best["transformers", precision]
            row[f"ours_{precision}_fps"] = args.batch / t_ours
            row[f"transformers_{precision}_fps"] = args.batch / t_theirs
            row[f"ratio_{precision}_ours_vs_transformers"] = t_theirs / t_ours
            print(f"{name} {size[0]}x{size[1]} {precision}: ours {args.batch / t_ours:.2f} frames/s, "
                  f"transformers {args.batch / t_theirs:.2f} frames/s, ratio {t_theirs / t_ours:.2f}", flush=True)
        row["gemm_bf16_vs_fp32"] = gemm_ceiling(ours, args.batch * (1 + ours.grid[0] * ours.grid[1]), args.repeats)
        row["ours_bf16_vs_fp32"] = row["ours_bf16_fps"] / row["ours_fp32_fps"]
        print(f"{name}: ours bf16 / fp32 = {row['ours_bf16_vs_fp32']:.2f}x "
              f"(the tower's matrix products alone: {row['gemm_bf16_vs_fp32']:.2f}x)", flush=True)
        results.append(row)
        del ours, theirs
    meta = {"torch": torch.__version__, "threads": args.threads, "machine": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "repeats": args.repeats,
            "load_average_1min_at_end": os.getloadavg()[0]}  # other processes on the cores skew absolute figures
    atomic_write_json(args.out, {"benchmark": "clip_image_tower", "meta": meta, "results": results})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
