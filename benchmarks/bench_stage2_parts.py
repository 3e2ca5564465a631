"""Which part of stage 2 moves the demo's test mAP: stage-2-only variants of the recipe on a finished demo's data.

Each variant trains stage 2 from the recipe model's stage-1 prompts (as the demo's ablations do) with some parts
switched off, and is evaluated on the demo's test protocols. Needs a demo folder that `farreid demo` finished
(its data and `trained/checkpoints/stage1.pt`); writes its runs under --out and
benchmarks/results/bench_stage2_parts.json.

    python benchmarks/bench_stage2_parts.py --demo runs/demo --out runs/bench_stage2_parts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import save

VARIANTS = {
    "heads_only": ("model.adapter.enabled=false", "model.pbp.enabled=false", "model.finetune_last_n=0"),
    "no_adapters": ("model.adapter.enabled=false",),
    "no_text_losses": ("train.stage2.loss.i2t_weight=0", "train.stage2.loss.supcon_i2t_weight=0",
                       "train.stage2.loss.supcon_t2i_weight=0"),
    "no_id_loss": ("train.stage2.loss.id_weight=0",),
    "no_triplet": ("train.stage2.loss.triplet_weight=0",),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a finished `farreid demo --out` folder")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_stage2_parts"), help="one run folder a variant")
    parser.add_argument("--seed", type=int, default=0, help="the seed the demo ran with")
    parser.add_argument("variants", nargs="*", help=f"some of {', '.join(VARIANTS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    from farreid.demo import Row, row_config
    from farreid.engine import train
    from farreid.errors import FarreidError
    from farreid.inference.evaluate import evaluate_checkpoint

    stage1 = args.demo / "trained" / "checkpoints" / "stage1.pt"
    if not stage1.is_file():
        raise FarreidError(f"{stage1} does not exist: run `farreid demo --out {args.demo}` first")
    rows = {}
    for name in args.variants or list(VARIANTS):
        cfg = row_config(args.demo, Row(name, name, VARIANTS[name]), stage1, seed=args.seed)
        cfg.out_dir = str(args.out)
        run = train(cfg, resume="auto", console=False)
        result = evaluate_checkpoint(run.last_checkpoint, None, args.out / name / "eval")
        rows[name] = {"overrides": list(VARIANTS[name]), "pooled": result.pooled.mAP,
                      **{p.name: p.rank.mAP for p in result.labelled}}
        print(name, {k: round(100 * v, 1) for k, v in rows[name].items() if k != "overrides"}, flush=True)
    save("bench_stage2_parts", {"demo_seed": args.seed, "mAP": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
