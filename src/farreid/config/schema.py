"""The configuration schema: typed dataclasses, one per part of the system.

OmegaConf turns these into structured configs, so a YAML recipe or a dotted override that names a key
missing here, or gives a value of the wrong type, is rejected before any work starts.
Every field is read by the code; a field nothing reads is a defect.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable


@dataclass
class AugConfig:
    """Clip-consistent training augmentation (same parameters for every frame of a clip)."""

    flip_prob: float = 0.5
    pad: int = 10  # pad then random-crop back to size; 0 disables
    jitter_prob: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.05
    erase_prob: float = 0.5
    erase_min_area: float = 0.02  # fraction of the frame
    erase_max_area: float = 0.4
    erase_ratio: float = 0.3  # aspect ratios drawn from [ratio, 1/ratio]
    # Far-distance degradation: down-scale a ground clip to a random person height in pixels, scale back,
    # blur and add compression-like noise, so that training sees aerial-like scale.
    degrade_prob: float = 0.5
    degrade_min_height: int = 16
    degrade_max_height: int = 64
    degrade_max_blur: float = 1.0  # Gaussian sigma in low-resolution pixels, drawn from [0, max]
    degrade_min_quality: int = 30  # JPEG-like quality drawn from [min, 95]
    degrade_noise: float = 0.02  # std of additive noise, drawn from [0, max]
    degrade_platforms: list[str] = field(default_factory=lambda: ["ground"])


@dataclass
class DataConfig:
    dataset: str = "detreidx"  # detreidx | agvpreid | g2avreid | mars | lsvid | dukevideo | ilidsvid | prid2011 | ...
    root: str = ""
    protocol: str = "all"  # all, a name or several comma-separated (A2G,G2A); one-protocol datasets ignore it
    options: dict[str, Any] = field(default_factory=dict)  # extra dataset keywords, e.g. folder: {pattern: ...}
    interpolation: str = "bicubic"  # resize of decoded frames to model.image_size: bicubic | bilinear
    train_frames: int = 8
    test_frames: int = 16
    train_sampling: str = "restricted_random"  # restricted_random | segment_begin | consecutive
    test_sampling: str = "segment_begin"  # ... | all (every frame, in chunks of test_frames)
    ids_per_batch: int = 2  # P
    tracklets_per_id: int = 8  # K
    val_ids: int = 0  # identities held out from train for validation during training (0 = none)
    workers: int = 2
    aug: AugConfig = field(default_factory=AugConfig)


@dataclass
class AdapterConfig:
    """Video Set-Level Adapters: temporal adapter beside attention, frame adapter beside the MLP."""

    enabled: bool = True
    bottleneck: int = 256
    zero_init: bool = False


@dataclass
class PromptConfig:
    """Platform-Bridge Prompts appended after ln_1 in the first `depth` blocks."""

    enabled: bool = True
    length: int = 4
    depth: int = -1  # -1 = three quarters of the blocks
    key: str = "camera"  # camera | platform | altitude | distance
    num_keys: int = 0  # camera key: number of camera ids, 0 = from the training set; other keys size themselves
    altitude_bins: list[float] = field(default_factory=lambda: [20.0, 40.0, 80.0])
    distance_bins: list[float] = field(default_factory=lambda: [20.0, 40.0, 80.0])


@dataclass
class TextConfig:
    """Identity text prompt "[ctx x n_ctx] [id x n_id] [ctx x n_ctx] ." through the frozen text tower."""

    n_ctx: int = 8
    n_id_tokens: int = 4


@dataclass
class ModelConfig:
    backbone: str = "ViT-B/16"  # a named architecture of any backbone family (ViT-B/16, siglip-base-patch16-224, ...), or auto
    pretrained: str = ""  # local checkpoint path or SigLIP folder, or a shipped name (synthetic-people-tiny); empty = random init
    image_size: list[int] = field(default_factory=lambda: [256, 128])  # [height, width] the towers take; frames are resized to it
    allow_torchscript: bool = False  # run TorchScript archives' code instead of reading them as data
    activation: str = "auto"  # auto (checkpoint's / QuickGELU for OpenAI weights) | quick_gelu | gelu
    stride: int = 0  # patch-embedding stride; 0 = patch size
    pos_resize: str = "bicubic"  # bicubic | bilinear
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    pbp: PromptConfig = field(default_factory=PromptConfig)
    text: TextConfig = field(default_factory=TextConfig)
    finetune_last_n: int = 2  # last N blocks of the image tower trained; 0 = frozen; = depth: whole image tower
    finetune_lr_mult: float = 0.1
    pooling: str = "attention"  # attention | mean
    grad_checkpointing: bool = False


@dataclass
class LossConfig:
    """Stage-2 loss terms (`farreid.engine.losses.TERMS`): each term's `<term>_weight` (0 switches it off), then its
    options."""

    id_weight: float = 0.25  # label-smoothed CE on each BNNeck classifier
    label_smoothing: float = 0.1  # for the identity and image->text CE
    triplet_weight: float = 1.0  # batch-hard triplet on each pooled feature
    triplet_margin: float = 0.3
    triplet_metric: str = "cosine"  # cosine | euclidean
    i2t_weight: float = 1.0  # CE of projected features against every identity's text feature
    supcon_i2t_weight: float = 1.0
    supcon_t2i_weight: float = 1.0
    centre_weight: float = 0.0  # centre loss on each pooled feature (bag of tricks: 5e-4)
    centre_lr_mult: float = 1.0  # the identity centres train at train.stage2.lr x this


@dataclass
class Stage1Config:
    """Prompt learning over cached, frame-pooled CLIP features (image side frozen). Adam; schedule per iteration."""

    epochs: int = 120
    batch_size: int = 64  # cached features a step (global, over all processes)
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    warmup_factor: float = 0.1  # linear warmup starts at this fraction of lr
    min_lr: float = 1e-6  # end of the cosine decay


@dataclass
class Stage2Config:
    """Adapters, prompts, pooling, last-N blocks, necks and classifiers. Adam; schedule per optimiser step."""

    epochs: int = 60
    lr: float = 1e-4
    bias_lr_factor: float = 2.0  # biases train at lr x this
    weight_decay: float = 2.5e-4
    weight_decay_bias: float = 1e-4
    warmup_epochs: int = 5
    warmup_factor: float = 0.1
    min_lr: float = 1e-6
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    accum_steps: int = 1  # micro-batches of P x K per optimiser step
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class PretrainConfig:
    """CLIP-style image-text pretraining of both towers on captioned synthetic renders (`farreid pretrain`).

    The corpus is rendered from `seed`; its people are disjoint from the synthetic ReID data set's. AdamW (no
    decay on gains, biases and embeddings), cosine schedule per step, learned temperature.
    """

    num_ids: int = 1500  # pretraining people
    images_per_id: int = 12  # captioned renders of each
    heldout_ids: int = 200  # further people for the zero-shot attribute check after each epoch
    heldout_images_per_id: int = 4
    epochs: int = 6
    batch_size: int = 256  # image-text pairs a step (global, over all processes)
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_epochs: int = 1
    warmup_factor: float = 0.01
    min_lr: float = 1e-5
    output: str = "towers.safetensors"  # OpenAI-named CLIP state dict (fp16), written into the run directory


@dataclass
class TrainConfig:
    stages: list[str] = field(default_factory=lambda: ["stage1", "stage2"])
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    # Stage-1 result read when stage1 is not in `stages`; empty = checkpoints/stage1.pt of this run.
    stage1_checkpoint: str = ""
    eval_every: int = 5  # epochs between validations (needs data.val_ids > 0)
    checkpoint_every: int = 1  # epochs
    keep_last: int = 2  # step checkpoints kept (plus stage1.pt and best.pt)
    log_every: int = 20  # optimiser steps between metric records
    sync_bn: bool = True  # batch norm statistics over all processes (CUDA only; CPU ranks use their own)


@dataclass
class RerankConfig:
    """Exact k-reciprocal re-ranking (Zhong et al.; torchreid's definition) on each protocol's features."""

    enabled: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


@dataclass
class EvalConfig:
    metric: str = "cosine"  # cosine | euclidean; re-ranking uses the Euclidean distance of the same features
    junk: str = "camera"  # camera (same pid and camera) | tracklet (the challenge scorer)
    flip: bool = True  # average with the horizontally flipped clip when extracting features
    dense: bool = False  # all frames in chunks of data.test_frames instead of sampled frames
    batch_size: int = 8  # clips per batch when extracting features
    max_rank: int = 50  # length of the CMC curve
    map_at: list[int] = field(default_factory=lambda: [10])  # cut-offs k of the mAP@k columns in metrics.json
    ap_interpolation: str = "none"  # none (AP as defined) | trapezoid (the VReID-XFD CSV scorer's AP)
    query_chunk: int = 1024  # queries per distance block (memory ~ query_chunk x gallery x 4 bytes)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    write_csv: bool = True  # challenge submission CSV for the A2G / G2A / A2A protocols
    show_queries: int = 4  # ranked-result pictures per protocol (0 = none)
    show_topk: int = 10  # gallery tracklets per picture


@dataclass
class Config:
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# The allowed values of every key live here, once: CHOICES (a set of values), POSITIVE (> 0), RANGES (an
# interval), RULES (relations between keys). The loader checks them whenever a config is loaded or handed to a
# command, and command-line options that set a config key are checked against that key's entry. OPTIONS holds
# the ranges of command-line options that are not config keys. The modules that act on a set of values import its
# constant from here rather than spelling it again.
PLATFORMS = ("ground", "aerial")  # index = the `platform` code in batches (0 = ground, 1 = aerial)
SAMPLING_MODES = ("restricted_random", "segment_begin", "consecutive", "all")  # `all` = dense, test time only
INTERPOLATIONS = ("bicubic", "bilinear")
CLIP_ACTIVATIONS = ("quick_gelu", "gelu")  # QuickGELU: what OpenAI's weights were trained with
ACTIVATION_CHOICES = ("auto", *CLIP_ACTIVATIONS)  # auto: the checkpoint's own, or its family's
PROMPT_KEYS = ("camera", "platform", "altitude", "distance")
POOLING_MODES = ("attention", "mean")
TRAIN_STAGES = ("stage1", "stage2")
DISTANCE_METRICS = ("cosine", "euclidean")
JUNK_RULES = ("camera", "tracklet")
AP_INTERPOLATIONS = ("none", "trapezoid")
CHOICES: dict[str, tuple] = {
    "device": ("auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(16))),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "data.interpolation": INTERPOLATIONS,
    "data.train_sampling": SAMPLING_MODES[:3],
    "data.test_sampling": SAMPLING_MODES,
    "data.aug.degrade_platforms": PLATFORMS,
    "model.pos_resize": INTERPOLATIONS,
    "model.activation": ACTIVATION_CHOICES,
    "model.pbp.key": PROMPT_KEYS,
    "model.pooling": POOLING_MODES,
    "train.stages": TRAIN_STAGES,
    "train.stage2.loss.triplet_metric": DISTANCE_METRICS,
    "eval.metric": DISTANCE_METRICS,
    "eval.junk": JUNK_RULES,
    "eval.ap_interpolation": AP_INTERPOLATIONS,
}
POSITIVE: tuple[str, ...] = (
    "model.image_size",
    "data.train_frames",
    "data.test_frames",
    "data.ids_per_batch",
    "data.tracklets_per_id",
    "model.adapter.bottleneck",
    "model.pbp.length",
    "pretrain.num_ids",
    "pretrain.images_per_id",
    "pretrain.heldout_ids",
    "pretrain.heldout_images_per_id",
    "pretrain.epochs",
    "pretrain.batch_size",
    "pretrain.lr",
    "train.stage1.epochs",
    "train.stage1.batch_size",
    "train.stage1.lr",
    "train.stage2.epochs",
    "train.stage2.lr",
    "train.stage2.bias_lr_factor",
    "train.stage2.accum_steps",
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep_last",
    "train.log_every",
    "eval.batch_size",
    "eval.max_rank",
    "eval.query_chunk",
    "eval.show_topk",
    "eval.rerank.k1",
    "eval.rerank.k2",
)


@dataclass(frozen=True)
class Range:
    """A closed (or, with `open_low` / `open_high`, half-open) interval of numbers; None = unbounded."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"must be {'>' if self.open_low else '>='} {self.low:g}"
        if self.low is None:
            return f"must be {'<' if self.open_high else '<='} {self.high:g}"
        return f"must be in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


AT_LEAST_0 = Range(0)
PROBABILITY = Range(0, 1)
FRACTION = Range(0, 1, open_low=True)  # (0, 1]

RANGES: dict[str, Range] = {
    "data.val_ids": AT_LEAST_0,
    "data.workers": AT_LEAST_0,
    "data.aug.flip_prob": PROBABILITY,
    "data.aug.pad": AT_LEAST_0,
    "data.aug.jitter_prob": PROBABILITY,
    "data.aug.brightness": PROBABILITY,
    "data.aug.contrast": PROBABILITY,
    "data.aug.saturation": PROBABILITY,
    "data.aug.hue": Range(0, 0.5),
    "data.aug.erase_prob": PROBABILITY,
    "data.aug.erase_min_area": FRACTION,
    "data.aug.erase_max_area": FRACTION,
    "data.aug.erase_ratio": FRACTION,
    "data.aug.degrade_prob": PROBABILITY,
    "data.aug.degrade_min_height": Range(1),
    "data.aug.degrade_max_height": Range(1),
    "data.aug.degrade_max_blur": AT_LEAST_0,
    "data.aug.degrade_min_quality": Range(1, 95),
    "data.aug.degrade_noise": AT_LEAST_0,
    "model.stride": AT_LEAST_0,
    "model.pbp.depth": Range(-1),
    "model.pbp.num_keys": AT_LEAST_0,
    "model.pbp.altitude_bins": AT_LEAST_0,
    "model.pbp.distance_bins": AT_LEAST_0,
    "model.text.n_ctx": Range(1),
    "model.text.n_id_tokens": Range(1),
    "model.finetune_last_n": AT_LEAST_0,
    "model.finetune_lr_mult": AT_LEAST_0,
    "pretrain.weight_decay": AT_LEAST_0,
    "pretrain.warmup_epochs": AT_LEAST_0,
    "pretrain.warmup_factor": FRACTION,
    "pretrain.min_lr": AT_LEAST_0,
    "train.stage1.weight_decay": AT_LEAST_0,
    "train.stage1.warmup_epochs": AT_LEAST_0,
    "train.stage1.warmup_factor": FRACTION,
    "train.stage1.min_lr": AT_LEAST_0,
    "train.stage2.weight_decay": AT_LEAST_0,
    "train.stage2.weight_decay_bias": AT_LEAST_0,
    "train.stage2.warmup_epochs": AT_LEAST_0,
    "train.stage2.warmup_factor": FRACTION,
    "train.stage2.min_lr": AT_LEAST_0,
    "train.stage2.grad_clip": AT_LEAST_0,
    "train.stage2.loss.id_weight": AT_LEAST_0,
    "train.stage2.loss.label_smoothing": Range(0, 1, open_high=True),
    "train.stage2.loss.triplet_weight": AT_LEAST_0,
    "train.stage2.loss.triplet_margin": AT_LEAST_0,
    "train.stage2.loss.i2t_weight": AT_LEAST_0,
    "train.stage2.loss.supcon_i2t_weight": AT_LEAST_0,
    "train.stage2.loss.supcon_t2i_weight": AT_LEAST_0,
    "train.stage2.loss.centre_weight": AT_LEAST_0,
    "train.stage2.loss.centre_lr_mult": AT_LEAST_0,
    "eval.map_at": Range(1),
    "eval.show_queries": AT_LEAST_0,
    "eval.rerank.lambda_value": PROBABILITY,
}


@dataclass(frozen=True)
class Rule:
    """A relation between keys: `holds(cfg)` must be true; the message names `key` and says what is wrong.
    `saved=False`: not checked on a configuration stored in a checkpoint (it may name a dataset registered only
    where it was trained)."""

    key: str
    holds: Callable[[Any], bool]
    message: Callable[[Any], str]
    saved: bool = True


def _registered_dataset(cfg: Any) -> bool:
    from farreid.data.registry import available_datasets

    return cfg.data.dataset.lower() in available_datasets()


def _datasets(cfg: Any) -> str:
    from farreid.data.registry import available_datasets

    return f"names no registered dataset; registered: {', '.join(available_datasets())}"


def _patch_size(cfg: Any) -> int:
    """The named backbone's patch size (1 when the backbone is only known from its weight file)."""
    from farreid.models.backbone import named_spec

    spec = named_spec(cfg.model.backbone)
    return spec.vision.patch_size if spec is not None else 1


def _depth(cfg: Any) -> int:
    """The named backbone's number of blocks (unbounded when it is only known from its weight file; the model
    checks again when it is built)."""
    from farreid.models.backbone import named_spec

    spec = named_spec(cfg.model.backbone)
    return spec.vision.layers if spec is not None else 1 << 30


def _ascending(values: Any) -> bool:
    return all(a < b for a, b in zip(list(values), list(values)[1:]))


def _stage_rules(stage: str) -> tuple[Rule, ...]:
    key = f"train.{stage}"
    return (
        Rule(f"{key}.min_lr", lambda c: c.train[stage].min_lr <= c.train[stage].lr,
             lambda c: f"must not exceed {key}.lr = {c.train[stage].lr}"),
        Rule(f"{key}.warmup_epochs", lambda c: c.train[stage].warmup_epochs < c.train[stage].epochs,
             lambda c: f"must be smaller than {key}.epochs = {c.train[stage].epochs}"),
    )


_LOSS_WEIGHTS = tuple(f.name for f in fields(LossConfig) if f.name.endswith("_weight"))  # one a loss term

RULES: tuple[Rule, ...] = (
    Rule("data.dataset", _registered_dataset, _datasets, saved=False),
    Rule("model.image_size", lambda c: len(c.model.image_size) == 2, lambda c: "must be [height, width]"),
    Rule("model.image_size", lambda c: min(c.model.image_size) >= _patch_size(c),
         lambda c: f"has a side smaller than the {c.model.backbone} patch size {_patch_size(c)}"),
    Rule("model.pbp.depth", lambda c: c.model.pbp.depth == -1 or 1 <= c.model.pbp.depth <= _depth(c),
         lambda c: f"must be -1 (three quarters of the blocks) or in [1, {_depth(c)}], the {c.model.backbone} depth"),
    Rule("model.finetune_last_n", lambda c: c.model.finetune_last_n <= _depth(c),
         lambda c: f"must not exceed the {c.model.backbone} depth {_depth(c)}"),
    Rule("model.pbp.altitude_bins", lambda c: _ascending(c.model.pbp.altitude_bins), lambda c: "must be ascending"),
    Rule("model.pbp.distance_bins", lambda c: _ascending(c.model.pbp.distance_bins), lambda c: "must be ascending"),
    Rule("data.aug.erase_min_area", lambda c: c.data.aug.erase_min_area <= c.data.aug.erase_max_area,
         lambda c: f"must not exceed data.aug.erase_max_area = {c.data.aug.erase_max_area}"),
    Rule("data.aug.degrade_min_height", lambda c: c.data.aug.degrade_min_height <= c.data.aug.degrade_max_height,
         lambda c: f"must not exceed data.aug.degrade_max_height = {c.data.aug.degrade_max_height}"),
    Rule("train.stages", lambda c: len(c.train.stages) > 0, lambda c: "must name at least one of stage1, stage2"),
    Rule("train.stages", lambda c: len(set(c.train.stages)) == len(c.train.stages), lambda c: "must not repeat a stage"),
    *_stage_rules("stage1"),
    *_stage_rules("stage2"),
    Rule("train.stage2.loss.id_weight", lambda c: any(c.train.stage2.loss[w] > 0 for w in _LOSS_WEIGHTS),
         lambda c: "and every other loss weight are 0: at least one loss term needs a positive weight"),
)

# Command-line options that are no config key, by the command's name and option: a Range or a tuple of choices.
OPTIONS: dict[str, Range | tuple] = {
    "search --platform": PLATFORMS,
    "extract --platform": PLATFORMS,
    "search -k": Range(1),
    "search --chunk-rows": Range(1),
    "search --rerank-max-gallery": Range(1),
    "extract --shard-size": Range(1),
    "export onnx --atol": Range(0, open_low=True),
    "export onnx --opset": Range(18),  # the dynamo exporter writes opset 18 or newer (it upgrades older requests)
    "data synth --stress": PROBABILITY,
}
