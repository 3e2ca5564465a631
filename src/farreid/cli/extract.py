"""`farreid extract`: embed every tracklet under a folder layout into resumable, sharded feature sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.errors import FarreidError

CheckpointOption = typer.Option(
    ..., "--checkpoint", help="Trained stage-2 checkpoint (.pt), or a run folder (its checkpoints/best.pt)."
)


def parse_options(items: list[str]) -> dict:
    """KEY=VALUE pairs, values read as YAML scalars (so numbers are numbers)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FarreidError(f"--option {item!r} must look like KEY=VALUE, e.g. pattern='_c(?P<camid>\\d+)'")
        out[key] = yaml.safe_load(value) if value else ""
    return out


@app.command("extract")
def extract(
    checkpoint: Path = CheckpointOption,
    input_dir: Path = typer.Option(
        ..., "--input", "-i",
        help="What to embed: a dataset root (with --dataset), a folder layout with train/ query/ gallery/ "
        "(e.g. from `farreid data from-mot`), a folder of tracklet folders, or one tracklet folder.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o",
        help="Output folder: <protocol>/query, <protocol>/gallery (and train) for datasets, else one feature set.",
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", "-d", help="Registered dataset layout of --input (detreidx, mars, folder, ...)."
    ),
    protocol: str = typer.Option("all", "--protocol", help="DetReIDX protocol to embed: all, A2G, G2A or A2A."),
    train: bool = typer.Option(False, "--train", help="Also embed the train split."),
    option: list[str] = typer.Option(
        [], "--option", help="Dataset option KEY=VALUE (repeatable), e.g. pattern=... or sidecar=... for folder."
    ),
    camid: int = typer.Option(0, "--camid", help="Camera id of tracklets in a plain folder (no layout metadata)."),
    platform: str = typer.Option("ground", "--platform", help="ground or aerial, for tracklets in a plain folder."),
    shard_size: int = typer.Option(4096, "--shard-size", help="Tracklets per feature shard (the unit of resuming)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace features already in --out instead of resuming."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where fast), fp32, bf16 or fp16 (CUDA)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Clips a forward pass (default: eval.batch_size)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Frame-decoding processes (default: data.workers)."),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Flip test-time augmentation (default: eval.flip)."),
    dense: Optional[bool] = typer.Option(
        None, "--dense/--sampled", help="Every frame in chunks, or the sampled test frames (default: eval.dense)."
    ),
) -> None:
    """Embed every tracklet under a folder (any registered dataset layout or a plain folder) into feature shards
    plus a metadata table; run the same command again to resume an interrupted extraction."""
    from farreid.config import check_option
    from farreid.inference.extract import extract_to_store
    from farreid.inference.model import ReIDModel
    from farreid.utils.io import check_output
    from farreid.utils.log import setup_logging

    for key, value, name in (
        ("extract --shard-size", shard_size, "--shard-size"), ("extract --platform", platform, "--platform"),
        ("device", device, "--device"), ("precision", precision, "--precision"),
        ("eval.batch_size", batch_size, "--batch-size"), ("data.workers", workers, "--workers"),
    ):
        check_option(key, value, name)
    check_output(out, "dir")
    setup_logging()
    options = parse_options(option)
    model = ReIDModel.from_checkpoint(checkpoint, device=device, precision=precision, flip=flip, dense=dense,
                                      batch_size=batch_size, workers=workers)
    summaries = extract_to_store(model, input_dir, out, dataset=dataset, protocol=protocol, train=train,
                                 options=options, camid=camid, platform=platform, shard_size=shard_size,
                                 overwrite=overwrite)
    for s in summaries:
        typer.echo(f"{s.name or '.':<16} {s.tracklets:8d} tracklets  {s.shards:4d} shard(s) "
                   f"({s.embedded} embedded, {s.kept} kept)  -> {out.joinpath(*filter(None, s.name.split('/')))}")
