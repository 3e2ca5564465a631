"""One logging set-up: readable lines on the console, JSON lines in the run's `log.jsonl`, and progress bars.

Metrics are logged as records with a `metrics` mapping (`log_metrics`), so the JSONL file is the machine-readable
history of a run (losses, learning rate, validation mAP) that reports and plots read back.
"""

from __future__ import annotations

import json
import os
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

LOGGER_NAME = "farreid"
T = TypeVar("T")


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class JsonLinesHandler(logging.Handler):
    """One JSON object a record: time, level, logger, message and any `metrics`."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        metrics = getattr(record, "metrics", None)
        if metrics is not None:
            entry["event"] = getattr(record, "event", "")
            entry["metrics"] = metrics
        self._fh.write(json.dumps(entry, default=float) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
        super().close()


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        return f"[{stamp}] {level}{record.getMessage()}"


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO, console: bool = True) -> logging.Logger:
    """Configure the `farreid` logger (idempotent: earlier handlers are replaced)."""
    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(_ConsoleFormatter())
        logger.addHandler(stream)
    if log_file is not None:
        logger.addHandler(JsonLinesHandler(log_file))
    return logger


def log_metrics(logger: logging.Logger, message: str, **metrics: Any) -> None:
    """Log `message` for people and `metrics` as structured fields of the JSONL record."""
    shown = " ".join(f"{k}={_fmt(v)}" for k, v in metrics.items())
    logger.info(f"{message} {shown}".strip(), extra={"metrics": metrics, "event": message})


def read_metrics(log_file: str | Path) -> list[dict[str, Any]]:
    """The `metrics` records of a run's JSONL log, each with its event name (the `message` given to
    `log_metrics`, e.g. "step" or "validation") and time."""
    out = []
    for line in Path(log_file).read_text().splitlines():
        entry = json.loads(line)
        if "metrics" in entry:
            out.append({"event": entry.get("event", ""), "time": entry["time"], **entry["metrics"]})
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None, **kwargs: Any) -> tqdm:
    """The one progress bar of the project; silent when stderr is not a terminal unless FARREID_PROGRESS=1."""
    from tqdm.auto import tqdm  # here, not at import: it loads asyncio, which `farreid --help` does not need

    forced = os.environ.get("FARREID_PROGRESS")
    disable = (forced == "0") if forced is not None else not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, leave=False, **kwargs)
