"""The main job: the whole pipeline on synthetic aerial-ground data, end to end, on a CPU in minutes.

1. write a synthetic data set in the DetReIDX layout (seeded; kept and reused when it is already there),
2. train the `demo_tiny` recipe: stage 1 (identity prompts) then stage 2 with attention pooling, and, for an
   honest ablation, stage 2 again from the same stage-1 result with mean pooling,
3. evaluate A2G, G2A and A2A for the untrained model, both trained models, with and without re-ranking,
4. write `report.html` (offline, one file) and print the results table.

An interrupted demo continues where it stopped (training resumes from its checkpoints); `fresh=True` starts over.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from farreid.config import Config, load_config
from farreid.errors import FarreidError
from farreid.utils.log import get_logger, setup_logging

if TYPE_CHECKING:  # torch and the evaluation code load when the demo runs, not when `farreid --help` lists it
    from farreid.eval.protocols import EvaluationResult

log = get_logger("demo")

RECIPE = "demo_tiny"
DEFAULT_MINUTES = 8.0  # the recipe's epochs are sized for this budget on a 2-core CPU
DATA_OPTIONS = dict(num_ids=150, frames=12, ground_tracklets=3, aerial_tracklets=2)


@dataclass
class Variant:
    """One evaluated model of the demo."""

    label: str
    pooling: str
    rerank: bool
    result: EvaluationResult
    eval_dir: Path


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    table: str
    variants: list[Variant] = field(default_factory=list)
    seconds: float = 0.0


def demo_config(out_dir: Path, minutes: float = DEFAULT_MINUTES, seed: int = 0, overrides: Sequence[str] = ()) -> Config:
    """The demo recipe pointed at `out_dir` (plus any dotted overrides), with both stages' epochs scaled to the
    time budget."""
    if minutes <= 0:
        raise FarreidError(f"--minutes must be > 0, got {minutes}")
    cfg = load_config(RECIPE, [f"data.root={out_dir / 'data'}", f"out_dir={out_dir}", f"seed={seed}", *overrides])
    scale = minutes / DEFAULT_MINUTES
    stage1 = replace(cfg.train.stage1, epochs=max(1, round(cfg.train.stage1.epochs * scale)))
    stage2 = replace(cfg.train.stage2, epochs=max(1, round(cfg.train.stage2.epochs * scale)))
    stage1.warmup_epochs = min(stage1.warmup_epochs, stage1.epochs - 1)
    stage2.warmup_epochs = min(stage2.warmup_epochs, stage2.epochs - 1)
    eval_every = max(1, min(cfg.train.eval_every, stage2.epochs // 4 or 1))
    return replace(cfg, train=replace(cfg.train, stage1=stage1, stage2=stage2, eval_every=eval_every))


def ensure_data(root: Path, seed: int, num_ids: int) -> None:
    """Generate the synthetic set unless this seed's set of this size is already there."""
    from farreid.data.synthetic import generate

    wanted = {**DATA_OPTIONS, "num_ids": num_ids, "seed": seed}
    marker = root / "synthetic.json"
    if marker.is_file():
        params = json.loads(marker.read_text()).get("params", {})
        if all(params.get(k) == v for k, v in wanted.items()):
            log.info(f"reusing synthetic data in {root}")
            return
    log.info(f"generating synthetic aerial-ground data in {root}")
    summary = generate(root, overwrite=True, **wanted)
    log.info(f"wrote {summary['frames_rendered']} frames in {summary['seconds']:.1f} s")


def _checkpoint(result) -> Path:
    """The end of the schedule, for every model alike: the demo's few held-out validation identities move by
    several mAP points between validations, too noisy to pick a checkpoint by."""
    path = result.last_checkpoint
    if path is None:
        raise FarreidError(f"training in {result.run_dir} left no checkpoint")
    return path


def run_demo(
    out_dir: str | Path = "runs/demo",
    minutes: float = DEFAULT_MINUTES,
    seed: int = 0,
    fresh: bool = False,
    console: bool = True,
    num_ids: int = DATA_OPTIONS["num_ids"],
    overrides: Sequence[str] = (),
) -> DemoResult:
    """Run the demo into `out_dir`; `num_ids` sizes the synthetic set (half train, half test); `overrides` are
    dotted config overrides on the demo recipe (e.g. `device=cuda`)."""
    from farreid.data import build_dataset_from_config
    from farreid.engine import train
    from farreid.engine.build import infer_num_keys
    from farreid.inference import ReIDModel
    from farreid.inference.evaluate import embed_protocols, evaluate_embedded
    from farreid.models import FarReID
    from farreid.report.demo_report import write_demo_report
    from farreid.utils.run import seed_everything

    started = time.perf_counter()
    out_dir = Path(out_dir)
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(None, console=console)
    cfg = demo_config(out_dir, minutes, seed, overrides)
    ensure_data(Path(cfg.data.root), seed, num_ids)
    dataset = build_dataset_from_config(cfg.data)

    # 1. the untrained model: same architecture and seed, random weights
    seed_everything(cfg.seed)
    untrained = ReIDModel(FarReID.from_config(cfg, num_classes=dataset.train.num_pids,
                                              num_keys=infer_num_keys(cfg, dataset)), cfg)

    # 2. training: attention pooling (stages 1 + 2), then mean pooling from the same stage-1 result
    attention = train(replace(cfg, name="attention"), resume="auto", console=console)
    stage1 = attention.run_dir / "checkpoints" / "stage1.pt"
    mean_cfg = replace(
        cfg, name="mean_pooling", model=replace(cfg.model, pooling="mean"),
        train=replace(cfg.train, stages=["stage2"], stage1_checkpoint=str(stage1)),
    )
    mean = train(mean_cfg, resume="auto", console=console)
    setup_logging(None, console=console)  # training pointed the log at its run; back to the console only

    # 3. evaluation: each model embeds the test protocols once; the trained ones are ranked with and without
    #    re-ranking
    variants = []
    plans = [
        ("untrained", "attention", (False,), untrained),
        ("trained", "mean", (False, True), _checkpoint(mean)),
        ("trained", "attention", (False, True), _checkpoint(attention)),
    ]
    for label, pooling, reranks, model in plans:
        log.info(f"embedding the test protocols with the {label} {pooling}-pooling model")
        protocols, device = embed_protocols(model, cfg, out_dir / "eval" / f"{label}_{pooling}" / "features")
        for rerank in reranks:
            name = f"{label}_{pooling}" + ("_rerank" if rerank else "")
            eval_dir = out_dir / "eval" / name
            result = evaluate_embedded(protocols, cfg, eval_dir, device=device, rerank=rerank, show_queries=3,
                                       title=f"farreid demo: {name.replace('_', ' ')}")
            variants.append(Variant(label, pooling, rerank, result, eval_dir))

    seconds = time.perf_counter() - started
    table = results_table(variants)
    report = write_demo_report(
        out_dir / "report.html", cfg=cfg, dataset=dataset, variants=variants,
        runs={"attention": attention.run_dir, "mean pooling": mean.run_dir}, seconds=seconds,
    )
    return DemoResult(out_dir, report, table, variants, seconds)


def result_rows(variants: list[Variant]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the results table: mAP and R1 per protocol and the pooled overall mAP, in %."""
    from farreid.eval.protocols import CASE_ORDER

    header = ["model", "pooling", "re-ranking"]
    for name in CASE_ORDER:
        header += [f"{name} mAP", f"{name} R1"]
    header.append("overall mAP")
    rows = []
    for v in variants:
        ranks = {p.name: p.rank for p in v.result.protocols}
        row = [v.label, v.pooling, "yes" if v.rerank else "no"]
        for name in CASE_ORDER:
            rank = ranks.get(name)
            row += [f"{100 * rank.mAP:.1f}", f"{100 * rank.rank(1):.1f}"] if rank else ["-", "-"]
        pooled = v.result.pooled
        row.append(f"{100 * pooled.mAP:.1f}" if pooled else "-")
        rows.append(row)
    return header, rows


def results_table(variants: list[Variant]) -> str:
    header, rows = result_rows(variants)
    lines = [header, *rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
