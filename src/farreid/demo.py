"""The main job: the paper's method, end to end, on synthetic aerial-ground data, on a CPU in minutes.

1. write a synthetic data set in the DetReIDX layout with the far-distance failures the method's components exist
   for (blurred, drifting and occluded frames; drones at 5.8-120 m), seeded, reused when already there;
2. fine-tune the shipped vision-language towers (`synthetic-people-tiny`, pretrained CLIP-style by
   `farreid pretrain`, as the paper starts from OpenAI CLIP) with the two stages of the `demo_tiny` recipe;
3. train the baselines and ablations under the same schedule: the same model from random weights, and stage 2
   again from the same stage-1 prompts with one component switched off at a time (attention pooling, platform
   prompts, last-N fine-tuning, degradation augmentation);
4. evaluate A2G, G2A and A2A for every model, a colour-histogram baseline and the untrained model, the trained
   model also with re-ranking; measure what the attention pooling weights do on faulty frames;
5. write `report.html` and `summary.json` (every row's mAP and R1, fractions) and print the results table.

An interrupted demo continues where it stopped (training resumes from its checkpoints); `fresh=True` starts over.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from farreid.config import Config, load_config
from farreid.errors import FarreidError
from farreid.utils.io import check_output, claim_folder, clear_own_outputs
from farreid.utils.log import get_logger, setup_logging

if TYPE_CHECKING:  # torch and the evaluation code load when the demo runs, not when `farreid --help` lists it
    from farreid.eval.protocols import EvaluationResult

log = get_logger("demo")

RECIPE = "demo_tiny"
DATA_OPTIONS = dict(num_ids=150, frames=12, ground_tracklets=3, aerial_tracklets=2, stress=0.5)


@dataclass(frozen=True)
class Row:
    """One trained model of the demo: a run name, what it is, and its overrides of the recipe."""

    name: str
    description: str
    overrides: tuple[str, ...] = ()
    stage2_only: bool = True  # stage 2 from the default model's stage-1 prompts


TRAINED = Row("trained", "pretrained towers fine-tuned with the paper's two stages (the recipe)", stage2_only=False)
FROM_SCRATCH = Row(
    "from_scratch", "the same model and epochs from random weights, every block trained (lr 1e-3)",
    ("model.pretrained=''", "model.finetune_last_n=4", "model.finetune_lr_mult=1.0", "train.stage2.lr=1e-3"),
    stage2_only=False,
)
ABLATIONS = (
    Row("mean_pooling", "trained, mean instead of attention pooling", ("model.pooling=mean",)),
    Row("no_prompts", "trained, no platform prompts", ("model.pbp.enabled=false",)),
    Row("frozen_backbone", "trained, no last-N fine-tuning (towers frozen)", ("model.finetune_last_n=0",)),
    Row("no_degradation", "trained, no far-distance degradation augmentation", ("data.aug.degrade_prob=0.0",)),
)
DEMO_OUTPUTS = ("data", "eval", "summary.json", "report.html",
                *(row.name for row in (TRAINED, FROM_SCRATCH, *ABLATIONS)))  # what `fresh=True` may delete


@dataclass
class Variant:
    """One evaluated row of the demo."""

    name: str
    description: str
    result: EvaluationResult
    eval_dir: Path


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    summary: Path
    table: str
    variants: list[Variant] = field(default_factory=list)
    attention: dict = field(default_factory=dict)
    zero_shot: dict = field(default_factory=dict)
    seconds: float = 0.0


def demo_config(out_dir: Path, scale: float = 1.0, seed: int = 0, overrides: Sequence[str] = ()) -> Config:
    """The demo recipe pointed at `out_dir` (plus any dotted overrides), both stages' epochs multiplied by `scale`."""
    if not (scale > 0 and math.isfinite(scale)):
        raise FarreidError(f"--scale must be a number > 0, got {scale}")
    cfg = load_config(RECIPE, [f"data.root={out_dir / 'data'}", f"out_dir={out_dir}", f"seed={seed}", *overrides])
    stage1 = replace(cfg.train.stage1, epochs=max(1, round(cfg.train.stage1.epochs * scale)))
    stage2 = replace(cfg.train.stage2, epochs=max(1, round(cfg.train.stage2.epochs * scale)))
    stage1.warmup_epochs = min(stage1.warmup_epochs, stage1.epochs - 1)
    stage2.warmup_epochs = min(stage2.warmup_epochs, stage2.epochs - 1)
    return replace(cfg, train=replace(cfg.train, stage1=stage1, stage2=stage2))


def row_config(out_dir: Path, row: Row, stage1: Path, scale: float = 1.0, seed: int = 0,
               overrides: Sequence[str] = ()) -> Config:
    """The demo config of one row: its overrides on top of the user's; a stage-2-only row reads the recipe
    model's stage-1 prompts."""
    reads = ["train.stages=[stage2]", f"train.stage1_checkpoint={stage1}"] if row.stage2_only else []
    return demo_config(out_dir, scale, seed, [*overrides, f"name={row.name}", *row.overrides, *reads])


def ensure_data(root: Path, seed: int, num_ids: int) -> dict:
    """Generate the synthetic set unless this seed's set of this size is already there; returns its summary."""
    from farreid.data.synthetic import generate

    wanted = {**DATA_OPTIONS, "num_ids": num_ids, "seed": seed}
    marker = root / "synthetic.json"
    if marker.is_file():
        summary = json.loads(marker.read_text())
        if all(summary.get("params", {}).get(k) == v for k, v in wanted.items()):
            log.info(f"reusing synthetic data in {root}")
            return summary
    log.info(f"generating synthetic aerial-ground data in {root}")
    summary = generate(root, overwrite=True, **wanted)
    log.info(f"wrote {summary['frames_rendered']} frames in {summary['seconds']:.1f} s")
    return summary


def _checkpoint(result) -> Path:
    """The end of the schedule, for every model alike: the demo's few held-out validation identities move by
    several mAP points between validations, too noisy to pick a checkpoint by."""
    if result.last_checkpoint is None:
        raise FarreidError(f"training in {result.run_dir} left no checkpoint")
    return result.last_checkpoint


def run_demo(
    out_dir: str | Path = "runs/demo",
    scale: float = 1.0,
    seed: int = 0,
    fresh: bool = False,
    console: bool = True,
    num_ids: int = DATA_OPTIONS["num_ids"],
    overrides: Sequence[str] = (),
    ablations: bool = True,
) -> DemoResult:
    """Run the demo into `out_dir`; `scale` multiplies every training schedule; `num_ids` sizes the synthetic set
    (half train, half test); `overrides` are dotted config overrides on the demo recipe (e.g. `device=cuda`);
    `ablations=False` trains only the default and the from-scratch models."""
    from farreid.data import build_dataset_from_config
    from farreid.engine import train
    from farreid.engine.build import infer_num_keys
    from farreid.eval import run_evaluation
    from farreid.inference import ReIDModel
    from farreid.inference.evaluate import embed_protocols
    from farreid.models import FarReID
    from farreid.report.demo_report import write_demo_report
    from farreid.utils.io import atomic_write_json
    from farreid.utils.run import seed_everything

    started = time.perf_counter()
    out_dir = Path(out_dir)
    cfg = demo_config(out_dir, scale, seed, overrides)  # every option checked before anything is touched
    check_output(out_dir, "dir")
    if fresh:
        clear_own_outputs(out_dir, DEMO_OUTPUTS, "demo")
    claim_folder(out_dir, "demo")
    setup_logging(None, console=console)
    data_summary = ensure_data(Path(cfg.data.root), seed, num_ids)
    dataset = build_dataset_from_config(cfg.data)
    timings: dict[str, float] = {"data": time.perf_counter() - started}

    # 1. training: the recipe (stages 1 + 2), from scratch, and the stage-2 ablations from the recipe's prompts
    runs = {}
    rows = (FROM_SCRATCH, *(ABLATIONS if ablations else ()))
    stage1 = Path(cfg.out_dir) / TRAINED.name / "checkpoints" / "stage1.pt"
    configs = {row.name: row_config(out_dir, row, stage1, scale, seed, overrides) for row in rows}
    trained = train(replace(cfg, name=TRAINED.name), resume="auto", console=console)
    runs[TRAINED.name] = trained
    for row in rows:
        runs[row.name] = train(configs[row.name], resume="auto", console=console)
    setup_logging(None, console=console)  # training pointed the log at its run; back to the console only
    timings["training"] = time.perf_counter() - started - timings["data"]

    # 2. evaluation: every model embeds the test protocols once (the recipe's also ranked with re-ranking)
    from farreid.inference.histogram import ColourHistogram

    seed_everything(cfg.seed)
    num_keys = infer_num_keys(cfg, dataset)
    untrained = ReIDModel(FarReID(replace(cfg.model, pretrained=""), dataset.train.num_pids, num_keys), cfg)
    # the shipped towers as they are: zero-initialised adapters add nothing, no prompts, frames averaged
    as_shipped = replace(cfg.model, adapter=replace(cfg.model.adapter, zero_init=True),
                         pbp=replace(cfg.model.pbp, enabled=False), pooling="mean")
    frozen = ReIDModel(FarReID(as_shipped, dataset.train.num_pids, num_keys), cfg)
    histogram = ColourHistogram(tuple(cfg.model.image_size), cfg.data.test_frames, cfg.data.test_sampling,
                                cfg.data.interpolation)
    plans: list[tuple[str, str, object, tuple[bool, ...]]] = [
        ("colour_histogram", "fixed colour histograms of three body bands (no learning)", histogram, (False,)),
        ("untrained", "the model's architecture with random weights", untrained, (False,)),
        ("pretrained_frozen", "the shipped vision-language towers as they are, no ReID training", frozen, (False,)),
        (FROM_SCRATCH.name, FROM_SCRATCH.description, _checkpoint(runs[FROM_SCRATCH.name]), (False,)),
        (TRAINED.name, TRAINED.description, _checkpoint(trained), (False, True)),
        *((row.name, row.description, _checkpoint(runs[row.name]), (False,)) for row in ABLATIONS if row.name in runs),
    ]
    variants = []
    for name, description, model, reranks in plans:
        log.info(f"embedding the test protocols: {name}")
        if isinstance(model, ColourHistogram):
            protocols, device = _embed_histogram(model, dataset), "cpu"
        else:
            protocols, device = embed_protocols(model, cfg, out_dir / "eval" / name / "features")
        for rerank in reranks:
            row = name + ("_rerank" if rerank else "")
            eval_dir = out_dir / "eval" / row
            shown = 3 if name in (TRAINED.name, "colour_histogram") and not rerank else 0
            options = replace(cfg.eval, show_queries=shown, rerank=replace(cfg.eval.rerank, enabled=rerank))
            result = run_evaluation(protocols, eval_dir, options, device=device,
                                    title=f"farreid demo: {row.replace('_', ' ')}")
            variants.append(Variant(row, description + (", k-reciprocal re-ranking" if rerank else ""), result, eval_dir))

    # 3. what the attention pooling does with faulty frames, and what the starting towers know
    best = ReIDModel.from_checkpoint(_checkpoint(trained), device=cfg.device, precision=cfg.precision)
    attention = attention_by_fault(best, dataset, data_summary)
    zero_shot = shipped_zero_shot(cfg)
    timings["evaluation"] = time.perf_counter() - started - timings["data"] - timings["training"]

    report = write_demo_report(
        out_dir / "report.html", cfg=cfg, dataset=dataset, variants=variants, runs={k: r.run_dir for k, r in runs.items()},
        seconds=time.perf_counter() - started, attention=attention, zero_shot=zero_shot, model=best,
        faults=data_summary.get("faults", {}),
    )
    seconds = time.perf_counter() - started
    summary = out_dir / "summary.json"
    atomic_write_json(summary, {
        "seconds": round(seconds, 1), "timings": {k: round(v, 1) for k, v in timings.items()},
        "rows": [summary_row(v) for v in variants], "attention": attention, "zero_shot": zero_shot,
    })
    return DemoResult(out_dir, report, summary, results_table(variants), variants, attention, zero_shot, seconds)


def _embed_histogram(histogram, dataset) -> list:
    from farreid.eval import ProtocolData

    return [ProtocolData(name, histogram.feature_set(p.query), histogram.feature_set(p.gallery))
            for name, p in dataset.protocols.items()]


def unique_test_tracklets(dataset) -> list:
    """Every test tracklet once (a tracklet appears in several protocols), in a stable order."""
    seen, out = set(), []
    for protocol in dataset.protocols.values():
        for t in (*protocol.query, *protocol.gallery):
            if t.name not in seen:
                seen.add(t.name)
                out.append(t)
    return out


def attention_by_fault(model, dataset, data_summary: dict) -> dict:
    """Mean relative attention weight (weight x T: 1 = a uniform share) of the test frames, by fault kind."""
    import numpy as np

    from farreid.data.sampling import sample_clip

    faults = data_summary.get("faults", {})
    tracklets = [t for t in unique_test_tracklets(dataset) if t.name in faults]
    if not tracklets:
        return {}
    weights = model.frame_weights(tracklets)
    shares: dict[str, list[float]] = {}
    for t, w in zip(tracklets, weights):
        frames = sample_clip(model.sampling, len(t.frames), model.num_frames, np.random.default_rng(0))
        for f, weight in zip(frames.tolist(), w.tolist()):
            shares.setdefault(faults[t.name][f], []).append(weight * len(w))
    return {kind: {"relative_weight": float(np.mean(v)), "frames": len(v)} for kind, v in sorted(shares.items())}


def shipped_zero_shot(cfg: Config) -> dict:
    """Zero-shot attribute retrieval of the towers the recipe starts from, on held-out captioned renders."""
    if not cfg.model.pretrained:
        return {}
    from farreid.data.synthetic.corpus import render_corpus
    from farreid.eval.zeroshot import zero_shot_attributes
    from farreid.models.clip.factory import create_clip
    from farreid.models.clip.tokenizer import ClipTokenizer

    clip = create_clip(cfg.model.backbone, cfg.model.pretrained, activation=cfg.model.activation)
    heldout = render_corpus(200, 4, seed=0, size=tuple(cfg.model.image_size), split="heldout",
                            interpolation=cfg.data.interpolation)
    return zero_shot_attributes(clip, ClipTokenizer.from_path(), heldout.images, heldout.attributes)


def summary_row(v: Variant) -> dict:
    """mAP and R1 per protocol and overall (query-pooled), as fractions."""
    from farreid.eval.protocols import CASE_ORDER

    ranks = {p.name: p.rank for p in v.result.protocols if p.rank is not None}
    pooled = v.result.pooled
    mAP = {name: ranks[name].mAP for name in CASE_ORDER if name in ranks}
    r1 = {name: float(ranks[name].rank(1)) for name in CASE_ORDER if name in ranks}
    if pooled is not None:
        mAP["overall"], r1["overall"] = pooled.mAP, float(pooled.rank(1))
    return {"name": v.name, "description": v.description, "mAP": mAP, "R1": r1}


def result_rows(variants: list[Variant]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the results table: mAP and R1 per protocol and the pooled overall mAP, in %."""
    from farreid.eval.protocols import CASE_ORDER

    header = ["model"]
    for name in CASE_ORDER:
        header += [f"{name} mAP", f"{name} R1"]
    header.append("overall mAP")
    rows = []
    for v in variants:
        row = summary_row(v)
        cells = [v.name]
        for name in CASE_ORDER:
            cells += [f"{100 * row['mAP'][name]:.1f}", f"{100 * row['R1'][name]:.1f}"] if name in row["mAP"] else ["-", "-"]
        cells.append(f"{100 * row['mAP']['overall']:.1f}" if "overall" in row["mAP"] else "-")
        rows.append(cells)
    return header, rows


def results_table(variants: list[Variant]) -> str:
    header, rows = result_rows(variants)
    lines = [header, *rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
