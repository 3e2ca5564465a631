"""From a user's own footage to tracklet folders: cut MOT-format tracker output into person crops.

MOT rows are `frame,id,x,y,w,h[,conf,...]` with 1-based frame numbers and boxes in pixels (MOTChallenge
`gt.txt` / tracker results). Each track becomes one or more tracklet folders in the generic `folder` layout

    OUT/<split>/<track id>/<track id>_c<camid>_f<first frame>/<frame>.jpg

plus rows in the layout's sidecar `OUT/tracklets.csv` (path, camid, platform, first_frame, last_frame, frames;
rows of earlier runs for other cameras are kept), so `farreid extract --dataset folder --root OUT` takes them
directly. The track id is the identity folder: ids are unique within one tracker run, not across cameras. Boxes are clamped to the image; boxes that end
up smaller than `min_size` pixels are skipped; a track is split where it has a gap and into pieces of at most
`max_len` frames; pieces shorter than `min_len` are dropped.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image

from farreid.errors import FarreidError
from farreid.utils.io import atomic_write_text, safe_join
from farreid.utils.log import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SIDECAR = "tracklets.csv"  # the sidecar name the `folder` dataset reads
SIDECAR_COLUMNS = ["path", "camid", "platform", "first_frame", "last_frame", "frames"]


@dataclass(frozen=True)
class MotBox:
    frame: int
    track: int
    x: float
    y: float
    w: float
    h: float
    conf: float = 1.0


@dataclass
class MotSummary:
    tracks: int = 0
    tracklets: int = 0
    crops: int = 0
    skipped_boxes: int = 0
    dropped_pieces: int = 0
    rows: list[dict] = field(default_factory=list)


def read_mot_tracks(path: str | Path, min_conf: float = -1.0) -> dict[int, list[MotBox]]:
    """Track id -> boxes sorted by frame. Malformed lines are an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FarreidError(f"tracks file not found: {path}")
    tracks: dict[int, list[MotBox]] = defaultdict(list)
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            frame, track = int(float(parts[0])), int(float(parts[1]))
            x, y, w, h = (float(v) for v in parts[2:6])
            conf = float(parts[6]) if len(parts) > 6 and parts[6] else 1.0
        except (ValueError, IndexError):
            raise FarreidError(
                f"{path}:{lineno}: expected 'frame,id,x,y,w,h[,conf,...]' (MOT format), got {line.strip()!r}"
            ) from None
        if frame < 1:
            raise FarreidError(f"{path}:{lineno}: MOT frame numbers start at 1, got {frame}")
        if conf >= min_conf and track >= 0:
            tracks[track].append(MotBox(frame, track, x, y, w, h, conf))
    if not tracks:
        raise FarreidError(f"{path} holds no boxes (after min_conf={min_conf})")
    for boxes in tracks.values():
        boxes.sort(key=lambda b: b.frame)
    return dict(tracks)


def split_track(boxes: list[MotBox], max_len: int, min_len: int) -> tuple[list[list[MotBox]], int]:
    """Pieces of consecutive frames, at most `max_len` long (0 = no limit); returns (pieces, #dropped)."""
    runs: list[list[MotBox]] = []
    for box in boxes:
        if runs and box.frame == runs[-1][-1].frame + 1:
            runs[-1].append(box)
        elif not runs or box.frame != runs[-1][-1].frame:  # duplicate frame rows: keep the first
            runs.append([box])
    pieces = [run[i : i + max_len] for run in runs for i in range(0, len(run), max_len)] if max_len > 0 else runs
    kept = [p for p in pieces if len(p) >= min_len]
    return kept, len(pieces) - len(kept)


def clamp_box(box: MotBox, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer (left, top, right, bottom) inside the image."""
    left = min(max(int(round(box.x)), 0), width)
    top = min(max(int(round(box.y)), 0), height)
    right = min(max(int(round(box.x + box.w)), 0), width)
    bottom = min(max(int(round(box.y + box.h)), 0), height)
    return left, top, right, bottom


def iter_folder_frames(frames_dir: str | Path, wanted: set[int]) -> Iterator[tuple[int, Image.Image]]:
    """Frames of an image folder: frame k is the k-th image in name order (MOTChallenge `img1/000001.jpg`)."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise FarreidError(f"frames folder not found: {frames_dir}")
    files = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FarreidError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {frames_dir}")
    if max(wanted) > len(files):
        raise FarreidError(f"tracks refer to frame {max(wanted)} but {frames_dir} holds only {len(files)} images")
    for number in sorted(wanted):
        path = files[number - 1]
        try:
            with Image.open(path) as img:
                yield number, img.convert("RGB")
        except OSError as exc:
            raise FarreidError(f"cannot read frame image {path}: {exc}") from None


def iter_video_frames(video: str | Path, wanted: set[int]) -> Iterator[tuple[int, Image.Image]]:
    """Decode a video file in order (PyAV) and yield the wanted frames, numbered from 1."""
    video = Path(video)
    if not video.is_file():
        raise FarreidError(f"video file not found: {video}")
    try:
        import av
    except ImportError:
        raise FarreidError("reading video files needs PyAV: pip install 'farreid[video]' (or av)") from None
    last = max(wanted)
    try:
        with av.open(str(video)) as container:
            for number, frame in enumerate(container.decode(video=0), 1):
                if number in wanted:
                    yield number, frame.to_image().convert("RGB")
                if number >= last:
                    return
    except av.error.FFmpegError as exc:
        raise FarreidError(f"cannot decode video {video}: {exc}") from None


def cut_tracklets(
    tracks: dict[int, list[MotBox]],
    frames: Iterator[tuple[int, Image.Image]],
    out_dir: str | Path,
    *,
    max_len: int = 16,
    min_len: int = 4,
    min_size: int = 8,
    camid: int = 0,
    platform: str = "ground",
    split: str = "gallery",
    quality: int = 95,
) -> MotSummary:
    """Write the crops of every track piece; `frames` yields (frame number, image) in increasing order."""
    if platform not in ("ground", "aerial"):
        raise FarreidError(f"platform must be 'ground' or 'aerial', got {platform!r}")
    if split not in ("train", "query", "gallery"):
        raise FarreidError(f"split must be train, query or gallery, got {split!r}")
    out_dir = Path(out_dir)
    split_dir = out_dir / split
    split_dir.mkdir(parents=True, exist_ok=True)
    summary = MotSummary(tracks=len(tracks))
    by_frame: dict[int, list[tuple[MotBox, str]]] = defaultdict(list)
    pieces: dict[str, list[MotBox]] = {}
    for track_id, boxes in sorted(tracks.items()):
        kept, dropped = split_track(boxes, max_len, min_len)
        summary.dropped_pieces += dropped
        for piece in kept:
            name = f"{track_id:04d}_c{camid}_f{piece[0].frame:06d}"
            pieces[name] = piece
            for box in piece:
                by_frame[box.frame].append((box, name))
    written: dict[str, list[int]] = defaultdict(list)
    for number, image in progress(frames, desc="cutting tracklets", total=len(by_frame)):
        for box, name in by_frame.get(number, ()):
            left, top, right, bottom = clamp_box(box, image.width, image.height)
            if right - left < min_size or bottom - top < min_size:
                summary.skipped_boxes += 1
                continue
            folder = safe_join(split_dir, f"{box.track:04d}", name)
            folder.mkdir(parents=True, exist_ok=True)
            image.crop((left, top, right, bottom)).save(folder / f"{number:06d}.jpg", quality=quality)
            written[name].append(number)
            summary.crops += 1
    for name, numbers in sorted(written.items()):
        summary.rows.append(
            {"path": f"{split}/{pieces[name][0].track:04d}/{name}", "camid": camid, "platform": platform,
             "first_frame": numbers[0], "last_frame": numbers[-1], "frames": len(numbers)}
        )
    summary.tracklets = len(summary.rows)
    _update_sidecar(out_dir / SIDECAR, summary.rows)
    return summary


def _update_sidecar(path: Path, rows: list[dict]) -> None:
    """Add this run's rows to the folder layout's sidecar, keeping rows of other runs (other cameras)."""
    kept: dict[str, dict] = {}
    if path.is_file():
        with path.open(newline="") as fh:
            kept = {row["path"]: row for row in csv.DictReader(fh) if row.get("path")}
    kept.update({row["path"]: row for row in rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SIDECAR_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(kept.values(), key=lambda r: r["path"]))
    atomic_write_text(path, buf.getvalue())


def tracklets_from_mot(
    tracks_file: str | Path,
    out_dir: str | Path,
    *,
    frames_dir: str | Path | None = None,
    video: str | Path | None = None,
    min_conf: float = -1.0,
    **cut_kwargs,
) -> MotSummary:
    """Read `tracks_file`, take frames from an image folder or a video, and write tracklet folders."""
    if (frames_dir is None) == (video is None):
        raise FarreidError("give exactly one frame source: a frames folder or a video file")
    tracks = read_mot_tracks(tracks_file, min_conf=min_conf)
    wanted = {box.frame for boxes in tracks.values() for box in boxes}
    frames = iter_folder_frames(frames_dir, wanted) if frames_dir is not None else iter_video_frames(video, wanted)
    return cut_tracklets(tracks, frames, out_dir, **cut_kwargs)
