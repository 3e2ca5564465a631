"""`farreid data ...`: dataset tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from farreid.cli import app
from farreid.cli.common import ConfigOption, OverridesArgument, build_config
from farreid.errors import FarreidError
from farreid.inference.mot import MIN_VISIBILITY, PERSON_CLASSES

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
    stress: float = typer.Option(
        0.0, "--stress",
        help="Largest share of faulty frames a tracklet gets (box slid off, passer-by in front, motion blur), 0-1.",
    ),
) -> None:
    """Write a small synthetic aerial-ground data set in the DetReIDX layout."""
    from farreid.config import check_option
    from farreid.data.synthetic import generate

    check_option("data synth --stress", stress, "--stress")
    summary = generate(out, num_ids=ids, seed=seed, frames=frames, ground_tracklets=ground,
                       aerial_tracklets=aerial, anonymised=anonymised, overwrite=overwrite, stress=stress)
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
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Protocol(s) of a multi-protocol dataset: all, one name (A2G) or several "
                                           "comma-separated (A2G,G2A)."),
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
    if cfg.data.dataset == "folder":  # every split present, as extract reads them (e.g. a lone gallery from from-mot)
        from farreid.data.folder import folder_splits
        from farreid.data.tracklet import stats_table

        options = cfg.data.options
        splits = folder_splits(cfg.data.root, options.get("pattern", ""), options.get("sidecar", ""))
        typer.echo(f"folder at {cfg.data.root}\n{stats_table(splits)}")
    else:
        try:
            loaded = build_dataset_from_config(cfg.data)
        except FarreidError as exc:
            if (Path(cfg.data.root) / "tracklets.csv").is_file():  # the folder layout's sidecar (from-mot writes it)
                raise FarreidError(f"{exc} ({cfg.data.root} has tracklets.csv, like the folder layout `farreid data "
                                   f"from-mot` writes: pass -d folder)") from None
            raise
        splits = loaded.splits()
        typer.echo(loaded.summary_table())
    if verify:
        count = sum(verify_frames(split, f"verify {split.name}") for split in splits)
        typer.echo(f"verified {count} frames: every header is a readable image")


def _classes(text: str) -> tuple[int, ...] | None:
    if text.strip().lower() == "all":
        return None
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise FarreidError(f"--classes takes MOT class numbers such as 1 or 1,2,7, or 'all'; got {text!r}") from None


@data_app.command("from-mot")
def from_mot(
    tracks: Path = typer.Option(..., "--tracks", "-t", help="MOT-format tracks file: frame,id,x,y,w,h[,conf,class,visibility]."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the `folder` dataset layout to write into."),
    frames: Optional[Path] = typer.Option(None, "--frames", help="Folder of frame images (frame k = k-th image)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Video file (needs PyAV: pip install 'farreid\\[video]')."),
    split: str = typer.Option("gallery", "--split", help="Split folder to write: train, query or gallery."),
    camid: int = typer.Option(0, "--camid", help="Camera id recorded for these tracklets."),
    platform: str = typer.Option("ground", "--platform", help="ground or aerial."),
    max_len: int = typer.Option(16, "--max-len", help="Split tracks into tracklets of at most this many frames (0 = whole)."),
    min_len: int = typer.Option(4, "--min-len", help="Drop tracklets shorter than this."),
    min_size: int = typer.Option(8, "--min-size", help="Skip boxes narrower or lower than this many pixels after clamping."),
    min_conf: float = typer.Option(-1.0, "--min-conf", help="Skip rows whose confidence column (7th) is below this."),
    classes: str = typer.Option(
        ",".join(map(str, PERSON_CLASSES)), "--classes",
        help="Keep rows of these MOT classes (8th column of gt.txt; 1 pedestrian, 2 person on vehicle, 7 static "
        "person), comma-separated, or 'all'. Rows with class -1 (tracker output) are kept.",
    ),
    min_visibility: float = typer.Option(
        MIN_VISIBILITY, "--min-visibility",
        help="Skip rows whose visibility (9th column of gt.txt, 0-1) is below this; -1 (tracker output) is kept.",
    ),
    id_offset: int = typer.Option(
        0, "--id-offset", help="Add this to every track id (keeps the ids of several sequences in one --out apart)."
    ),
    shared_ids: bool = typer.Option(
        False, "--shared-ids",
        help="The tracks files written into --out number the same people (one ground truth over several cameras): "
        "equal ids are one identity.",
    ),
) -> None:
    """Cut MOT-format tracks (gt.txt or a tracker's output) into tracklet folders for stats, extract, search and eval."""
    from farreid.inference.mot import tracklets_from_mot
    from farreid.utils.log import setup_logging

    setup_logging()
    summary = tracklets_from_mot(
        tracks, out, frames_dir=frames, video=video, min_conf=min_conf, classes=_classes(classes),
        min_visibility=min_visibility, id_offset=id_offset, shared_ids=shared_ids, max_len=max_len, min_len=min_len,
        min_size=min_size, camid=camid, platform=platform, split=split,
    )
    typer.echo(
        f"wrote {summary.tracklets} tracklets ({summary.crops} crops) from {summary.tracks} tracks to {out / split}; "
        f"skipped {summary.skipped_boxes} degenerate boxes, dropped {summary.dropped_pieces} short pieces"
    )
