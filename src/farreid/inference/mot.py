"""From a user's own footage to tracklet folders: cut MOT-format tracks into person crops.

MOT rows are `frame,id,x,y,w,h[,conf,class,visibility,...]` with 1-based frame numbers and boxes in pixels
(MOTChallenge `gt.txt`, tracker results). Each track becomes one or more tracklet folders in the generic
`folder` layout

    OUT/<split>/<pid>/<pid>_c<camid>_f<first frame>/<frame>.jpg       pid = id_offset + track id

plus rows in the layout's sidecar `OUT/tracklets.csv` (path, camid, platform, first_frame, last_frame, frames,
source = the tracks file), so `farreid data stats`, `extract`, `search` and `eval` read camera and identity
the same way. Rows of earlier runs (other cameras, other splits) are kept.

Filters, all before any frame is decoded: `min_conf` on column 7 (the score of tracker output; the "consider"
flag of gt.txt); `classes` on column 8 and `min_visibility` on column 9 where a file has them (MOTChallenge
gt.txt: class 1 = pedestrian, 2 = person on vehicle, 7 = static person, 8 = distractor, others are vehicles and
occluders); -1 there (tracker output) means unknown and passes. Boxes are clamped to the image; boxes smaller than
`min_size` pixels are skipped; a track is split where it has a gap and into pieces of at most `max_len` frames;
pieces shorter than `min_len` are dropped.

Track ids are unique within one sequence, not across sequences: a second tracks file written into the same OUT
whose ids meet identities of another file is refused, unless the files share one numbering of people
(`shared_ids`, e.g. one ground truth over several cameras) or `id_offset` keeps them apart.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from farreid.errors import FarreidError
from farreid.utils.io import atomic_write_text, safe_join
from farreid.utils.log import get_logger, progress

if TYPE_CHECKING:  # PIL loads when frames are read, so the CLI can take this module's defaults cheaply
    from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SIDECAR = "tracklets.csv"  # the sidecar name the `folder` dataset reads
SIDECAR_COLUMNS = ["path", "camid", "platform", "first_frame", "last_frame", "frames", "source"]
log = get_logger("inference")
PERSON_CLASSES = (1,)  # MOTChallenge gt.txt: pedestrian
MIN_VISIBILITY = 0.25  # MOTChallenge gt.txt: share of the box not occluded; below this a crop shows mostly occluder


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


@dataclass
class _Filtered:
    rows: int = 0
    untracked: int = 0
    low_conf: int = 0
    other_class: int = 0
    occluded: int = 0


def _number(text: str, what: str, integer: bool = False) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} is {text}")
    if integer and value != int(value):
        raise ValueError(f"{what} must be a whole number, got {text}")
    return int(value) if integer else value


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain-text file; bytes that are not UTF-8 are an error naming the line."""
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise FarreidError(
                f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "a MOT tracks file is plain text, one 'frame,id,x,y,w,h,...' row a line"
            ) from None


def read_mot_tracks(
    path: str | Path,
    min_conf: float = -1.0,
    classes: tuple[int, ...] | None = PERSON_CLASSES,
    min_visibility: float = MIN_VISIBILITY,
) -> dict[int, list[MotBox]]:
    """Track id -> boxes sorted by frame (see the module doc for the filters; `classes=None` keeps every class).
    A malformed line is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FarreidError(f"tracks file not found: {path}")
    tracks: dict[int, list[MotBox]] = defaultdict(list)
    seen = _Filtered()
    for lineno, line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) < 6:
                raise ValueError("fewer than 6 columns")
            frame, track = _number(parts[0], "frame", True), _number(parts[1], "id", True)
            x, y, w, h = (_number(v, "box value") for v in parts[2:6])
            extra = [_number(v, "column value") if v else -1.0 for v in parts[6:9]]
        except ValueError as exc:
            raise FarreidError(
                f"{path}:{lineno}: expected 'frame,id,x,y,w,h[,conf,class,visibility,...]' (MOT format: finite numbers, "
                f"whole frame numbers and ids) ({exc}), got {line.strip()!r}"
            ) from None
        if frame < 1:
            raise FarreidError(f"{path}:{lineno}: MOT frame numbers start at 1, got {frame}")
        conf = extra[0] if len(extra) > 0 and parts[6] else 1.0
        cls = int(extra[1]) if len(extra) > 1 else -1
        visibility = extra[2] if len(extra) > 2 else -1.0
        seen.rows += 1
        if track < 0:
            seen.untracked += 1
        elif conf < min_conf:
            seen.low_conf += 1
        elif classes is not None and cls >= 0 and cls not in classes:
            seen.other_class += 1
        elif 0 <= visibility < min_visibility:
            seen.occluded += 1
        else:
            tracks[track].append(MotBox(frame, track, x, y, w, h, conf))
    if not tracks:
        raise FarreidError(_empty_reason(path, seen, min_conf, classes, min_visibility))
    kept = sum(len(boxes) for boxes in tracks.values())
    log.info(f"{path}: {seen.rows} rows, {kept} boxes of {len(tracks)} tracks kept; left out {seen.untracked} "
             f"without track id, {seen.low_conf} below min_conf, {seen.other_class} of other classes, "
             f"{seen.occluded} less visible than {min_visibility}")
    for boxes in tracks.values():
        boxes.sort(key=lambda b: b.frame)
    return dict(tracks)


def _empty_reason(path: Path, seen: _Filtered, min_conf: float, classes, min_visibility: float) -> str:
    if seen.rows == 0:
        return f"{path} holds no boxes (no 'frame,id,x,y,w,h,...' rows)"
    if seen.untracked == seen.rows:
        return (
            f"{path} has no track ids (every id is -1): it holds detections, like MOTChallenge det/det.txt, not "
            "tracks. Cutting tracklets needs boxes linked over time: give a tracker's output in MOT format, or the "
            "ground truth gt/gt.txt"
        )
    kept_classes = "all" if classes is None else ",".join(map(str, classes))
    return (
        f"{path}: none of its {seen.rows} boxes passes the filters ({seen.untracked} without track id, "
        f"{seen.low_conf} below --min-conf {min_conf}, {seen.other_class} not of --classes {kept_classes}, "
        f"{seen.occluded} below --min-visibility {min_visibility}); loosen the filter that removed them"
    )


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
    from PIL import Image

    for number in progress(sorted(wanted), desc="cut tracklets", unit="frame"):
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
        with av.open(str(video)) as container, progress(desc="cut tracklets", total=last, unit="frame") as bar:
            for number, frame in enumerate(container.decode(video=0), 1):
                bar.update()
                if number in wanted:
                    yield number, frame.to_image().convert("RGB")
                if number >= last:
                    return
    except av.error.FFmpegError as exc:
        raise FarreidError(f"cannot decode video {video}: {exc}") from None
    raise FarreidError(f"tracks refer to frame {last} but {video} ends before it")


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
    id_offset: int = 0,
    source: str = "",
    quality: int = 95,
) -> MotSummary:
    """Write the crops of every track piece; `frames` yields (frame number, image) in increasing order.
    Track `t` becomes identity `id_offset + t`; `source` (the tracks file) is recorded in the sidecar."""
    check_cut_options(platform, split, id_offset)
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
            name = f"{id_offset + track_id:04d}_c{camid}_f{piece[0].frame:06d}"
            pieces[name] = piece
            for box in piece:
                by_frame[box.frame].append((box, name))
    written: dict[str, list[int]] = defaultdict(list)
    for number, image in frames:
        for box, name in by_frame.get(number, ()):
            left, top, right, bottom = clamp_box(box, image.width, image.height)
            if right - left < min_size or bottom - top < min_size:
                summary.skipped_boxes += 1
                continue
            folder = safe_join(split_dir, f"{id_offset + box.track:04d}", name)
            folder.mkdir(parents=True, exist_ok=True)
            image.crop((left, top, right, bottom)).save(folder / f"{number:06d}.jpg", quality=quality)
            written[name].append(number)
            summary.crops += 1
    for name, numbers in sorted(written.items()):
        summary.rows.append(
            {"path": f"{split}/{id_offset + pieces[name][0].track:04d}/{name}", "camid": camid, "platform": platform,
             "first_frame": numbers[0], "last_frame": numbers[-1], "frames": len(numbers), "source": source}
        )
    summary.tracklets = len(summary.rows)
    _update_sidecar(out_dir / SIDECAR, summary.rows)
    return summary


def check_cut_options(platform: str, split: str, id_offset: int) -> None:
    if platform not in ("ground", "aerial"):
        raise FarreidError(f"platform must be 'ground' or 'aerial', got {platform!r}")
    if split not in ("train", "query", "gallery"):
        raise FarreidError(f"split must be train, query or gallery, got {split!r}")
    if id_offset < 0:
        raise FarreidError(f"--id-offset must be >= 0, got {id_offset}")


def _sidecar_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if row.get("path")]


def _row_pid(row: dict) -> int | None:
    parts = row["path"].strip("/").split("/")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def check_identities(out_dir: str | Path, pids: set[int], source: str, shared_ids: bool = False) -> None:
    """Refuse to merge the identities of two sequences: ids already in `out_dir` that came from another
    tracks file (or from an unknown one) and that these `pids` would join, unless `shared_ids`."""
    if shared_ids:
        return
    rows = _sidecar_rows(Path(out_dir) / SIDECAR)
    others: dict[int, str] = {}
    for row in rows:
        pid = _row_pid(row)
        if pid is not None and (row.get("source") or "") != source:
            others.setdefault(pid, row.get("source") or "an earlier run")
    clash = sorted(pids & set(others))
    if clash:
        shown = ", ".join(map(str, clash[:5])) + (" ..." if len(clash) > 5 else "")
        offset = (max(others) // 1000 + 1) * 1000
        raise FarreidError(
            f"{out_dir} already holds identities {shown} cut from {others[clash[0]]}; the ids of {source} would "
            f"merge with them into one person each. If both files number the same people (one ground truth over "
            f"several cameras), pass --shared-ids; otherwise keep them apart with --id-offset {offset} (this "
            f"file's id 1 becomes {offset + 1}), or write to another --out"
        )


def _update_sidecar(path: Path, rows: list[dict]) -> None:
    """Add this run's rows to the folder layout's sidecar, keeping rows of other runs (other cameras)."""
    kept = {row["path"]: row for row in _sidecar_rows(path)}
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
    classes: tuple[int, ...] | None = PERSON_CLASSES,
    min_visibility: float = MIN_VISIBILITY,
    id_offset: int = 0,
    shared_ids: bool = False,
    **cut_kwargs,
) -> MotSummary:
    """Read `tracks_file`, take frames from an image folder or a video, and write tracklet folders. Everything is
    checked (options, tracks, identities already in `out_dir`) before the first frame is decoded."""
    if (frames_dir is None) == (video is None):
        raise FarreidError("give exactly one frame source: a frames folder or a video file")
    check_cut_options(cut_kwargs.get("platform", "ground"), cut_kwargs.get("split", "gallery"), id_offset)
    tracks = read_mot_tracks(tracks_file, min_conf=min_conf, classes=classes, min_visibility=min_visibility)
    source = str(Path(tracks_file).resolve())
    check_identities(out_dir, {id_offset + t for t in tracks}, source, shared_ids)
    wanted = {box.frame for boxes in tracks.values() for box in boxes}
    frames = iter_folder_frames(frames_dir, wanted) if frames_dir is not None else iter_video_frames(video, wanted)
    return cut_tracklets(tracks, frames, out_dir, id_offset=id_offset, source=source, **cut_kwargs)
