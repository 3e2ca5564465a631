"""One place that decides the device and the autocast precision; library code takes a `torch.device` from here.

`precision="auto"` means bf16 where the hardware runs it fast (CUDA with bf16, or a CPU with AVX-512 BF16 /
AMX, where ViT inference is ~3x faster than fp32 at cosine >= 0.9999) and fp32 elsewhere.
fp16 is offered on CUDA only, always with a gradient scaler when training.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 matrix multiply
_warned_slow_precision = False


class SlowPrecisionWarning(RuntimeWarning):
    """A forced reduced precision that this CPU runs far slower than fp32."""


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda when available, else cpu. A named cuda device that is absent is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device '{name}' requested but CUDA is not available here; use device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty where there is no such file)."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    probe = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    is_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return bool(is_bf16) or "AMX" in str(probe).upper() or bool(cpu_flags() & set(FAST_BF16_FLAGS))


def warn_if_slow_precision(precision: str, device: torch.device) -> None:
    """Warn once a process when bf16/fp16 is forced on a CPU without native bf16 (no AVX-512-BF16 or AMX)."""
    global _warned_slow_precision
    if device.type != "cpu" or precision not in ("bf16", "fp16") or _warned_slow_precision or cpu_has_fast_bf16():
        return
    _warned_slow_precision = True
    warnings.warn(
        f"precision={precision} on a CPU without AVX-512-BF16 or AMX (no {' / '.join(FAST_BF16_FLAGS)} in "
        "/proc/cpuinfo): torch falls back to a generic matrix multiply, ~65x slower than fp32 for a ViT-B/16 MLP "
        "layer (benchmarks/bench_precision_cpu.py), and a ViT-B/16 stage-2 step took 680-1060 s in bf16 against 23 s "
        "in fp32 on such a CPU; use precision=auto (fp32 here) unless you measured otherwise",
        SlowPrecisionWarning, stacklevel=3,
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise RuntimeError("precision fp16 is supported on CUDA only; use bf16 or fp32 on the CPU")
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of auto, {', '.join(_DTYPES)}; got {precision!r}")
    warn_if_slow_precision(precision, device)
    return precision


@dataclass(frozen=True)
class Precision:
    """A device plus an autocast policy. `autocast()` is a no-op for fp32."""

    device: torch.device
    name: str = "fp32"

    @classmethod
    def create(cls, device: str | torch.device = "auto", precision: str = "auto") -> "Precision":
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        return cls(dev, resolve_precision(precision, dev))

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def needs_grad_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device.type, enabled=self.needs_grad_scaler)
