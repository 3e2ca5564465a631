"""Walking dataset trees fast and failing early: folder listings without decoding a single image.

Every check raises `FarreidError` with the offending path: a missing split folder, an empty tracklet, a non-image
file, a pid folder that is not an integer, an unreadable image. Image files are recognised by extension and,
for the first frame of every tracklet, by their header bytes (a cheap read, no decoding); every frame is checked
when it is decoded, and `verify_frames` checks all headers on demand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from farreid.errors import FarreidError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF")
_LEADING_NUMBER = re.compile(r"\d+")
_DIGITS = "0123456789"


def is_ignored(name: str) -> bool:
    """Hidden files (`.DS_Store`, editor files) are skipped everywhere."""
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def require_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FarreidError(f"missing {what}: {path} is not a folder")
    return path


def require_split_dir(path: str | Path, what: str) -> Path:
    """A split folder that exists and holds at least one entry (checked before any long walk starts)."""
    path = require_dir(path, what)
    with os.scandir(path) as it:
        if not any(not is_ignored(entry.name) for entry in it):
            raise FarreidError(f"empty {what}: {path} holds nothing")
    return path


def require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FarreidError(f"missing {what}: {path} does not exist")
    return path


def list_entries(folder: str | Path) -> tuple[list[str], list[str]]:
    """(sub-folder names, file names) of `folder`, sorted, hidden entries left out."""
    dirs, files = [], []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if is_ignored(entry.name):
                    continue
                (dirs if entry.is_dir() else files).append(entry.name)
    except OSError as exc:
        raise FarreidError(f"cannot list {folder}: {exc.strerror or exc}") from None
    dirs.sort()
    files.sort()
    return dirs, files


def frame_order(names: list[str]) -> list[str]:
    """Frame names in temporal order.

    Names of equal length (zero-padded frame numbers) sort as text. Otherwise names are ordered by the number
    that follows their common prefix (so `..._S1_9.jpg` comes before `..._S1_10.jpg`), then by text.
    """
    if len({len(n) for n in names}) <= 1:
        return sorted(names)
    prefix = os.path.commonprefix(names).rstrip(_DIGITS)
    start = len(prefix)

    def key(name: str) -> tuple[int, str]:
        match = _LEADING_NUMBER.match(name, start)
        return (int(match.group()) if match else -1, name)

    return sorted(names, key=key)


def list_frames(folder: str | Path, files: list[str] | None = None) -> list[str]:
    """The image file names of a tracklet folder in temporal order; any other file or an empty folder is an error."""
    if files is None:
        subdirs, files = list_entries(folder)
        if subdirs:
            raise FarreidError(f"tracklet folder {folder} contains sub-folders ({subdirs[0]}); expected only frames")
    bad = [n for n in files if not is_image_name(n)]
    if bad:
        raise FarreidError(
            f"non-image file {os.path.join(folder, bad[0])} in a tracklet folder "
            f"(frames must be {', '.join(IMAGE_EXTENSIONS)})"
        )
    if not files:
        raise FarreidError(f"empty tracklet: {folder} holds no frames")
    return frame_order(files)


def check_image_header(path: str | Path) -> None:
    """Raise if `path` cannot be opened or does not start like a JPEG/PNG/BMP/WebP file (no decoding)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise FarreidError(f"unreadable image {path}: {exc.strerror or exc}") from None
    if not head.startswith(_SIGNATURES):
        reason = "empty file" if not head else "not a JPEG/PNG/BMP/WebP image"
        raise FarreidError(f"unreadable image {path}: {reason}")


def parse_pid(name: str, parent: str | Path) -> int:
    """An identity folder name as an integer pid, or one clear error."""
    try:
        return int(name)
    except ValueError:
        raise FarreidError(f"pid folder {os.path.join(parent, name)} is not an integer") from None


def verify_frames(tracklets: Iterable, progress_desc: str = "") -> int:
    """Check the header of every frame of `tracklets` (slower than indexing, still no decoding); returns the count."""
    from farreid.utils.log import progress

    count = 0
    for tracklet in progress(tracklets, desc=progress_desc or "verify frames"):
        for path in tracklet.frames.paths():
            check_image_header(path)
            count += 1
    return count
