"""Stage-2 training speed and memory: demo_tiny throughput (tracklets/s) and the step time of a ViT-B/16 stage-2
step (B=4 tracklets, T=4, 256x128), CPU, fp32 and bf16 autocast, with the peak memory of each case.

One step = forward of the whole model, every stage-2 loss (ID, triplet, image->text, SupCon both ways) against a
fixed random text table, backward, gradient clipping off, Adam over the stage-2 parameter groups: exactly what
`farreid.engine` runs, minus data loading (batches are random tensors already in memory). Each case runs in its
own process so that its peak resident memory (ru_maxrss) is its own; weights are random (no checkpoint needed).

    python benchmarks/bench_train.py [--cases demo_tiny-fp32 demo_tiny-bf16 vitb16-fp32 vitb16-bf16] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from farreid.utils.io import atomic_write_json

CASES = {
    # name: (recipe, tracklets a step (P x K), frames, identities, precision)
    "demo_tiny-fp32": ("demo_tiny", 32, 4, 64, "fp32"),
    "demo_tiny-bf16": ("demo_tiny", 32, 4, 64, "bf16"),
    "vitb16-fp32": ("detreidx_vitb16", 4, 4, 500, "fp32"),
    "vitb16-bf16": ("detreidx_vitb16", 4, 4, 500, "bf16"),
}


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def run_case(name: str, steps: int, threads: int) -> dict:
    """Build the model of the recipe, then time `steps` stage-2 steps after one warm-up step."""
    from farreid.config import load_config
    from farreid.engine.distributed import DistContext
    from farreid.engine.loop import Stepper
    from farreid.engine.losses import ReIDCriterion
    from farreid.engine.optim import WarmupCosine, adam, trainable_parameters
    from farreid.engine.stage2 import ReIDObjective, stage2_param_groups
    from farreid.models import FarReID
    from farreid.utils.device import Precision

    recipe, batch, frames, num_classes, precision_name = CASES[name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # demo_tiny at 128x64, the size the published figures were measured at (the demo recipe trains at 96x48)
    sizes = ["model.image_size=[128,64]"] if recipe == "demo_tiny" else []
    cfg = load_config(recipe, ["model.pretrained=''", f"data.train_frames={frames}", *sizes])
    s2 = cfg.train.stage2
    model = FarReID(cfg.model, num_classes, num_keys=3).train()
    rss_model = _rss_mib()
    precision = Precision(torch.device("cpu"), precision_name)
    groups = stage2_param_groups(model, lr=s2.lr, weight_decay=s2.weight_decay, bias_lr_factor=s2.bias_lr_factor,
                                 weight_decay_bias=s2.weight_decay_bias, backbone_lr_mult=cfg.model.finetune_lr_mult)
    optimizer = adam(groups)
    stepper = Stepper(optimizer, WarmupCosine(optimizer, total_steps=1000), precision.grad_scaler(), trainable_parameters(groups))
    with torch.no_grad():
        text = torch.randn(num_classes, model.text_features(torch.tensor([0])).shape[-1])
    objective = ReIDObjective(model, ReIDCriterion(s2.loss, num_classes=num_classes, feature_dims=model.triplet_feature_dims),
                              precision=precision, ctx=DistContext(), text=text)
    k = cfg.data.tracklets_per_id if batch % cfg.data.tracklets_per_id == 0 else 2
    batch_dict = {
        "clip": torch.randn(batch, frames, 3, *cfg.model.image_size),
        "mask": torch.ones(batch, frames, dtype=torch.bool),
        "pid": torch.arange(batch) // k,
        "camid": torch.arange(batch) % 3,
        "platform": (torch.arange(batch) % 3 > 0).long(),
        "altitude": torch.full((batch,), float("nan")),
        "distance": torch.full((batch,), float("nan")),
        "index": torch.arange(batch),
    }
    parts: dict[str, list[float]] = {"forward_s": [], "backward_s": [], "optimizer_s": [], "step_s": []}
    for i in range(steps + 1):
        t0 = time.perf_counter()
        terms, _ = objective(batch_dict)  # forward + every loss term
        t1 = time.perf_counter()
        stepper.backward(terms["loss"])
        t2 = time.perf_counter()
        stepper.step()
        t3 = time.perf_counter()
        if i:  # the first step is a warm-up
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts[key].append(value)
    median = {key: statistics.median(values) for key, values in parts.items()}
    step = median["step_s"]
    return {
        "case": name, "recipe": recipe, "backbone": cfg.model.backbone, "precision": precision_name,
        "tracklets_per_step": batch, "frames": frames, "input": "x".join(map(str, cfg.model.image_size)),
        "trainable_params_M": sum(p.numel() for p in trainable_parameters(groups)) / 1e6,
        **median, "tracklets_per_s": batch / step, "loss": float(terms["loss"]),
        "rss_after_build_MiB": rss_model, "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/bench_train.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # run one case in this process, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.steps, args.threads)))
        return
    load_before = os.getloadavg()
    results = []
    for name in args.cases:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--threads", str(args.threads)],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-4000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(row)
        print(f"{name}: {row['step_s']:.3f} s/step (forward+loss {row['forward_s']:.3f}, backward {row['backward_s']:.3f}, "
              f"Adam {row['optimizer_s']:.3f}), {row['tracklets_per_s']:.2f} tracklets/s, "
              f"peak RSS {row['peak_rss_MiB']:.0f} MiB (model built: {row['rss_after_build_MiB']:.0f} MiB)", flush=True)
    by_name = {r["case"]: r for r in results}
    for base in ("demo_tiny", "vitb16"):
        if f"{base}-fp32" in by_name and f"{base}-bf16" in by_name:
            ratio = by_name[f"{base}-fp32"]["step_s"] / by_name[f"{base}-bf16"]["step_s"]
            by_name[f"{base}-bf16"]["speedup_vs_fp32"] = ratio
            print(f"{base}: bf16 step is {ratio:.2f}x as fast as fp32")
    meta = {"torch": torch.__version__, "threads": args.threads, "steps": args.steps,
            "load_average_before_after": [load_before, os.getloadavg()],  # other processes on the machine skew the figures
            "machine": platform.processor() or platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    atomic_write_json(args.out, {"benchmark": "stage2_training_step", "meta": meta, "results": results})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
