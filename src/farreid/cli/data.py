"""`farreid data ...`: dataset tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config, not_built_yet

data_app = typer.Typer(
    help="Datasets: synthesise a DetReIDX-layout set (synth), print statistics (stats), cut tracklets from "
    "MOT-format tracker output (from-mot).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the data set to (created; must be empty)."),
    ids: int = typer.Option(60, "--ids", help="Number of identities (half train, half test)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed writes the same files."),
    frames: int = typer.Option(12, "--frames", help="Frames per tracklet."),
    ground: int = typer.Option(2, "--ground", help="Ground tracklets per identity."),
    aerial: int = typer.Option(2, "--aerial", help="Aerial tracklets per identity and session (two sessions)."),
    anonymised: bool = typer.Option(
        False, "--anonymised", help="Write test folders without identity folders, like the challenge test release."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier synthetic data set in --out."),
) -> None:
    """Write a small synthetic aerial-ground data set in the DetReIDX layout."""
    from farreid.data.synthetic import generate

    summary = generate(out, num_ids=ids, seed=seed, frames=frames, ground_tracklets=ground,
                       aerial_tracklets=aerial, anonymised=anonymised, overwrite=overwrite)
    typer.echo(
        f"wrote {summary['frames_rendered']} frames of {summary['train_ids']} train + {summary['test_ids']} test "
        f"identities to {out} in {summary['seconds']} s"
    )
    for split, count in sorted(summary["tracklets"].items()):
        typer.echo(f"  {split:<34} {count:6d} tracklets")


@data_app.command("stats")
def stats(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Registered dataset name (default: data.dataset)."),
    root: Optional[Path] = typer.Option(None, "--root", "-r", help="Dataset folder (default: data.root)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="DetReIDX protocol: all, A2G, G2A or A2A."),
    verify: bool = typer.Option(False, "--verify", help="Also check the header of every frame (slower)."),
    config: Optional[Path] = ConfigOption,
    overrides: Optional[list[str]] = OverridesArgument,
) -> None:
    """Print identities, tracklets, frames and per-platform counts of a dataset's splits."""
    from farreid.data import build_dataset_from_config, verify_frames

    cfg = build_config(config, overrides)
    if dataset is not None:
        cfg.data.dataset = dataset
    if root is not None:
        cfg.data.root = str(root)
    if protocol is not None:
        cfg.data.protocol = protocol
    loaded = build_dataset_from_config(cfg.data)
    typer.echo(loaded.summary_table())
    if verify:
        count = sum(verify_frames(split, f"verify {split.name}") for split in loaded.splits())
        typer.echo(f"verified {count} frames: every header is a readable image")


@data_app.command("from-mot")
def from_mot() -> None:
    """Cut MOT-format tracks (frame,id,x,y,w,h,...) into tracklet folders."""
    not_built_yet("data from-mot", 9)
