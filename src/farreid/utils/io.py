"""Files that are never left half-written, and paths that never escape their folder."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import torch


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error the old file survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def safe_join(root: str | Path, *names: str) -> Path:
    """`root/names...`, refusing names (from data or users) that would climb out of `root`."""
    root = Path(root).resolve()
    target = root.joinpath(*names).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"refusing path {'/'.join(names)!r}: it leads outside {root}")
    return target
