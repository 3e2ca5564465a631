"""Files that are never left half-written, and paths that never escape their folder.

Temporary files (`tempfile.mkstemp` makes them 0600) are given the mode any other new file would get under the
user's umask before they are renamed into place, so results are as readable as the user's other files.
JSON files are strict JSON: NaN and infinities are written as null.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def temp_file_beside(path: str | Path) -> tuple[int, str]:
    """An open descriptor and the name of a new hidden file in `path`'s folder, with the umask's usual mode."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error the old file survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
        raise ValueError(f"refusing path {'/'.join(names)!r}: it leads outside {root}")
    return target
