"""Evaluate a trained checkpoint on its dataset's test protocols: extract, then the whole evaluation pipeline.

    from farreid.inference import evaluate_checkpoint
    result = evaluate_checkpoint("runs/demo_tiny/checkpoints/best.pt")        # the checkpoint's own dataset
    print(result.table())

Each protocol's query and gallery are embedded with `ReIDModel` (flip per `eval.flip`, every frame in chunks
per `eval.dense`, through `farreid.eval.extract_features`) and handed to `farreid.eval.run_evaluation` with
`eval.*` as its options (metrics table, metrics.json, challenge CSV, ranked pictures, report.html). A checkpoint
path is read once (`StoredCheckpoint`) and the object handed on. The features are kept in
`<out>/features/<protocol>/{query,gallery}` so that `farreid eval --features` can re-evaluate them (with other
re-ranking settings, say) without touching the model again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from farreid.config import Config
from farreid.data import build_dataset_from_config
from farreid.data.registry import dataset_options
from farreid.errors import FarreidError
from farreid.eval import EvaluationResult, FeatureSet, ProtocolData, run_evaluation, save_protocol
from farreid.eval.features import check_text_names
from farreid.inference.loading import StoredCheckpoint, checkpoint_config, run_folder_of
from farreid.inference.model import ReIDModel
from farreid.utils.io import check_output, safe_join
from farreid.utils.log import get_logger

log = get_logger("inference")


def default_eval_dir(cfg: Config, checkpoint: str | Path | StoredCheckpoint | ReIDModel | None = None) -> Path:
    """`<run>/results/eval` when the checkpoint path lies in a training run folder (`<run>/checkpoints/x.pt`),
    else `<out_dir>/<name>/results/eval` of `cfg` (whose `out_dir` never comes from the checkpoint)."""
    if isinstance(checkpoint, ReIDModel):
        source = checkpoint.source
    elif isinstance(checkpoint, StoredCheckpoint):
        source = checkpoint.path
    else:
        source = checkpoint
    run = run_folder_of(source) if source else None
    return (run if run is not None else safe_join(cfg.out_dir, cfg.name)) / "results" / "eval"


def evaluate_checkpoint(
    checkpoint: str | Path | StoredCheckpoint | ReIDModel,
    cfg: Config | None = None,
    out_dir: str | Path | None = None,
    *,
    title: str | None = None,
) -> EvaluationResult:
    """Evaluate `checkpoint` (a path, a run directory, a `StoredCheckpoint` or a loaded `ReIDModel`) and write the
    results to `out_dir` (default `<out_dir>/<name>/results/eval` of `cfg`). A path is read once.

    `cfg` supplies the data (dataset, root, protocol, test sampling), evaluation (`eval.*`), device and precision
    settings; None means the checkpoint's own configuration on the best available device. The network and its
    input size always come from the checkpoint.
    """
    if not isinstance(checkpoint, ReIDModel):
        checkpoint = StoredCheckpoint.of(checkpoint)
    cfg = cfg or (checkpoint.cfg if isinstance(checkpoint, ReIDModel) else checkpoint_config(checkpoint))
    out_dir = check_output(out_dir if out_dir is not None else default_eval_dir(cfg, checkpoint), "dir")
    protocols, device = embed_protocols(checkpoint, cfg, out_dir / "features")
    return run_evaluation(protocols, out_dir, cfg.eval, device=device, title=title or f"farreid evaluation: {cfg.name}")


def embed_protocols(
    checkpoint: str | Path | StoredCheckpoint | ReIDModel, cfg: Config, features_dir: str | Path | None = None
) -> tuple[list[ProtocolData], torch.device]:
    """Embed the query and gallery of every test protocol of `cfg`'s dataset (and keep them in `features_dir`)."""
    if not isinstance(checkpoint, ReIDModel):
        checkpoint = StoredCheckpoint.of(checkpoint)
    trained = checkpoint.cfg
    if list(cfg.model.image_size) != list(trained.model.image_size):
        (h, w), (ch, cw) = trained.model.image_size, cfg.model.image_size
        raise FarreidError(
            f"the model takes {h}x{w} frames but model.image_size asks for {ch}x{cw}; leave it at the checkpoint's value"
        )
    if isinstance(checkpoint, ReIDModel):
        model = checkpoint
    else:
        model = ReIDModel.from_checkpoint(checkpoint, device=cfg.device, precision=cfg.precision)
    runner = model.with_settings(
        flip=cfg.eval.flip, dense=cfg.eval.dense, num_frames=cfg.data.test_frames, sampling=cfg.data.test_sampling,
        batch_size=cfg.eval.batch_size, workers=cfg.data.workers,
    )
    extra = {"load_train": False} if "load_train" in dataset_options(cfg.data.dataset) else {}
    dataset = build_dataset_from_config(cfg.data, **extra)
    if not dataset.protocols:
        raise FarreidError(f"dataset {cfg.data.dataset!r} at {cfg.data.root} has no test protocol (query and gallery)")
    for name, protocol in dataset.protocols.items():
        for split in (protocol.query, protocol.gallery):
            check_text_names(split, f"{cfg.data.root} ({name})")
    splits = [split for protocol in dataset.protocols.values() for split in (protocol.query, protocol.gallery)]
    features = embed_once(runner, splits)
    protocols = []
    for (name, protocol), (query, gallery) in zip(dataset.protocols.items(), zip(features[::2], features[1::2])):
        log.info(f"{name}: {len(protocol.query)} query and {len(protocol.gallery)} gallery tracklets")
        data = ProtocolData(name, FeatureSet.from_tracklets(query, list(protocol.query)),
                            FeatureSet.from_tracklets(gallery, list(protocol.gallery)))
        if features_dir is not None:
            save_protocol(data, Path(features_dir), runner.describe())
        protocols.append(data)
    return protocols, runner.precision.device


def _copy_key(tracklet) -> tuple:
    """What makes two records one tracklet: DetReIDX stores a test tracklet once per case it belongs to (the same
    name, the same frame files copied into each case folder)."""
    first, last = Path(tracklet.frames[0]), Path(tracklet.frames[-1])
    return (tracklet.name, tracklet.pid, tracklet.camid, tuple(Path(f).name for f in tracklet.frames),
            first.stat().st_size, last.stat().st_size)


def embed_once(runner: ReIDModel, splits: list) -> list[torch.Tensor]:
    """The embeddings of every split, each distinct tracklet embedded once however many splits hold a copy."""
    index: dict[tuple, int] = {}
    unique, positions = [], []
    for split in splits:
        rows = []
        for t in split:
            key = _copy_key(t)
            if key not in index:
                index[key] = len(unique)
                unique.append(t)
            rows.append(index[key])
        positions.append(rows)
    total = sum(len(p) for p in positions)
    log.info(f"embedding {len(unique)} distinct tracklets ({total} in all splits)")
    features = torch.from_numpy(runner.embed_tracklets(unique))
    return [features[rows] for rows in positions]
