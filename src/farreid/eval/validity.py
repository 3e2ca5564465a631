"""Evaluation inputs that are refused instead of used: labels that are not integers, features that are not finite.

A cast would be silently wrong: pids 0.6 and 0.4 would both become identity 0 (one identity where there are two),
and camera ids such as 'c0' have no integer value at all. Integer-valued floats (1.0, from a spreadsheet) are
exact and accepted. A NaN feature or distance would otherwise rank silently (one NaN in a distance matrix
spreads to every re-ranked distance); it is one error naming what holds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from farreid.errors import FarreidError


def integer_labels(values: Any, what: str) -> np.ndarray:
    """`values` as an int64 array, refusing non-integer numbers, NaN, booleans and strings (naming `what`)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)
    bad = _first_non_integer(arr.ravel())
    raise FarreidError(
        f"{what} must be integers; got {bad!r} ({arr.dtype.name} values): map labels to integer ids exactly "
        "(e.g. with a dictionary) instead of casting them"
    )


def _first_non_integer(arr: np.ndarray) -> Any:
    for v in arr.tolist():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            return v
    return arr.tolist()[0] if arr.size else None


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """`x` unchanged, or one clear error naming `what` and the first row holding NaN or infinite values."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x.reshape(x.shape[0], -1) if x.ndim else x.reshape(1, 1))).any(dim=1)
        row = int(bad.nonzero()[0, 0])
        raise FarreidError(f"{what} contain NaN or infinite values (first in row {row})")
    return x
