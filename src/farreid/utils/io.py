"""Files that are never left half-written, paths that never escape their folder, output locations checked before
any work, and folders that farreid empties only of what it wrote there itself.

Temporary files (`tempfile.mkstemp` makes them 0600) are given the mode any other new file would get under the
user's umask before they are renamed into place, so results are as readable as the user's other files.
JSON files are strict JSON: NaN and infinities are written as null.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from farreid.errors import FarreidError

TEMP_SUFFIX = ".tmp"  # atomic_open's temporary files are `.<name>.<random>.tmp` beside their target
OWNER_MARKER = ".farreid.json"  # written into a folder farreid creates for a command (see `claim_folder`)
DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
                errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied"}
FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)  # never a bug, wherever they are met


class UnsafePathError(FarreidError, ValueError):
    """A name (from data or a user) that would lead outside the folder it belongs in."""


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def temp_file_beside(path: str | Path) -> tuple[int, str]:
    """An open descriptor and the name of a new hidden file in `path`'s folder, with the umask's usual mode."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def output_error(path: str | Path, exc: OSError) -> FarreidError:
    """One message naming `path` for an OS error met while writing it (disk full, read-only, no permission)."""
    reason = DISK_ERRORS.get(exc.errno or -1, exc.strerror or str(exc))
    return FarreidError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error the old file survives."""
    path = Path(path)
    if path.is_dir():
        raise FarreidError(f"cannot write {path}: it is a folder (a file is expected there)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_file_beside(path)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            raise output_error(path, exc) from None
        raise


@contextlib.contextmanager
def read_text_file(path: str | Path) -> Iterator[IO[str]]:
    """Open a UTF-8 text file we read (CSV, YAML); bytes that are not UTF-8 are one error naming the file."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise FarreidError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise FarreidError(f"cannot read {path}: {exc.strerror}") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def strict_json(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, inf) replaced by None, so `json` writes null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    text = json.dumps(strict_json(obj), indent=2, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def safe_join(root: str | Path, *names: str) -> Path:
    """`root/names...`, refusing names (from data or users) that would climb out of `root`."""
    root = Path(root).resolve()
    target = root.joinpath(*names).resolve()
    if target != root and root not in target.parents:
        raise UnsafePathError(f"refusing path {'/'.join(names)!r}: it leads outside {root}")
    return target


def is_own_temp(name: str) -> bool:
    """True for the name of a temporary file `atomic_open` writes (`.<target>.<random>.tmp`)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and name.count(".") >= 3


def remove_stale_temps(folder: str | Path) -> int:
    """Delete our own temporary files left in `folder` by a killed process (never anything else); returns how many.
    Call it only where no other farreid process writes at the same time (e.g. a run folder at its start)."""
    folder = Path(folder)
    removed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            if is_own_temp(entry.name) and entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
    return removed


def check_output(path: str | Path, kind: str = "dir", *, empty: bool = False, option: str = "--out") -> Path:
    """Fail before any work when `path` cannot take the output: `kind="file"` refuses an existing folder,
    `kind="dir"` an existing file (and, with `empty=True`, a non-empty folder); the nearest existing folder must be
    writable. Creates nothing."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise FarreidError(f"{option} {path} is an existing folder; give the path of a file to write")
    if kind == "dir":
        if path.exists() and not path.is_dir():
            raise FarreidError(f"{option} {path} is an existing file; give a folder")
        if empty and path.is_dir() and any(path.iterdir()):
            raise FarreidError(f"{option} {path} is a folder that is not empty; choose an empty or new folder")
    existing = path if kind == "dir" and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FarreidError(f"{option} {path}: {existing} is a file, so nothing can be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FarreidError(f"{option} {path}: cannot write in {existing} (read-only or no permission)")
    return path


def claim_folder(folder: str | Path, command: str) -> Path:
    """Create `folder` (if needed) and, when farreid creates it (new or empty), mark it as one `command` writes
    into, so that a later `clear_own_outputs` knows it may empty it. A folder that already held files without
    the marker is used but never marked: it may hold the user's own files under names farreid also uses."""
    folder = Path(folder)
    marker = folder / OWNER_MARKER
    if not marker.is_file() and not (folder.is_dir() and any(folder.iterdir())):
        atomic_write_json(marker, {"written_by": f"farreid {command}"})
    return folder


def clear_own_outputs(folder: str | Path, owned: tuple[str, ...], command: str, marker: str = OWNER_MARKER) -> None:
    """Delete from `folder` the entries `command` writes there (`owned`, its `marker`, our temp files) and nothing
    else. A folder without the marker, or holding any other entry, is refused before anything is deleted: it may
    hold a user's files."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise FarreidError(f"{folder} is a file, not a folder farreid {command} wrote; nothing deleted")
    entries = list(folder.iterdir())
    if not entries:
        return
    foreign = sorted(e.name for e in entries if e.name not in (*owned, marker) and not is_own_temp(e.name))
    if foreign or not (folder / marker).is_file():
        what = f"holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}" if foreign else f"has no {marker}"
        raise FarreidError(
            f"refusing to delete {folder}: it {what}, which farreid {command} did not write; nothing deleted "
            "(move your files away or choose another folder)"
        )
    try:
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except OSError as exc:
        raise FarreidError(f"cannot delete {exc.filename or folder}: {exc.strerror or exc}") from None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with one as a formula


def spreadsheet_safe(cell: str) -> str:
    """A text cell for a CSV that spreadsheets open: one starting like a formula gets a leading `'`, which
    spreadsheets show as text (as does one already starting with `'`, so that reading back is exact); every
    other cell (all ordinary tracklet names) is unchanged."""
    return "'" + cell if cell.startswith((*FORMULA_STARTS, "'")) else cell


def from_spreadsheet_safe(cell: str) -> str:
    """The text `spreadsheet_safe` was given."""
    return cell[1:] if cell.startswith("'") else cell
