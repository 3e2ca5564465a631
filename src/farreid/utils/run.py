"""The run directory: `runs/<name>/` holds everything a run produced and what it takes to reproduce it.

    runs/<name>/
      config.yaml      the resolved configuration
      meta.json        git revision, package versions, command line, host
      log.jsonl        the run's log and metrics, one JSON object a line
      checkpoints/     model checkpoints (atomic writes)
      results/         metrics tables, rankings, pictures, reports
"""

from __future__ import annotations

import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from farreid.config import Config, config_to_yaml
from farreid.utils.io import atomic_write_json, atomic_write_text, output_error, remove_stale_temps, safe_join
from farreid.utils.log import setup_logging

TRACKED_PACKAGES = ("farreid", "torch", "numpy", "pillow", "omegaconf", "safetensors", "faiss-cpu", "onnxruntime")


def seed_everything(seed: int) -> None:
    """One seed drives Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_revision(path: str | Path = ".") -> str | None:
    """The commit of the checkout holding `path` (with `-dirty` if it has changes), or None outside git."""
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(path), capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_metadata() -> dict:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_revision": git_revision(Path(__file__).parent),
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def meta_file(self) -> Path:
        return self.root / "meta.json"

    @property
    def log_file(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def path(self, *names: str) -> Path:
        """A path inside the run directory; names from data cannot climb out of it."""
        return safe_join(self.root, *names)


def create_run(cfg: Config, run_root: str | Path | None = None, log: bool = True, console: bool = True) -> RunDir:
    """Create (or reopen) `<out_dir>/<name>/`, write config + metadata, and point logging at its JSONL file."""
    root = Path(run_root) if run_root is not None else safe_join(cfg.out_dir, cfg.name)
    run = RunDir(root)
    for folder in (run.root, run.checkpoints, run.results):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(folder, exc) from None
        remove_stale_temps(folder)  # left by a process killed mid-write; the run folder is ours alone now
    atomic_write_text(run.config_file, config_to_yaml(cfg))
    atomic_write_json(run.meta_file, run_metadata())
    if log:
        setup_logging(run.log_file, console=console)
    return run
