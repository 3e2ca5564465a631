"""Temporal sampling: which T frames of an n-frame tracklet make a clip.

- `restricted_random`: cut the tracklet into T equal segments, one random frame from each (training default).
- `segment_begin`: the first frame of each of the T segments (deterministic, evenly spaced; test default).
- `consecutive`: T consecutive frames from a random start.
- `all`: every frame, in chunks of T (dense test); the last chunk is padded and its padding masked out.
Tracklets shorter than T are stretched by repeating frames in order (0,0,1,1,2,...), and those frames count as
real (mask True). Randomness comes only from the `numpy.random.Generator` passed in.
"""

from __future__ import annotations

import numpy as np

from farreid.config.schema import SAMPLING_MODES
from farreid.errors import FarreidError


def _bounds(n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment i covers frames [start_i, end_i): equal split, and never empty (short tracklets repeat frames)."""
    i = np.arange(t)
    start = (i * n) // t
    end = np.maximum(((i + 1) * n) // t, start + 1)
    return start, end


def restricted_random(n: int, t: int, rng: np.random.Generator) -> np.ndarray:
    start, end = _bounds(n, t)
    return start + (rng.random(t) * (end - start)).astype(np.int64)


def segment_begin(n: int, t: int) -> np.ndarray:
    return _bounds(n, t)[0].astype(np.int64)


def consecutive(n: int, t: int, rng: np.random.Generator) -> np.ndarray:
    if n < t:
        return segment_begin(n, t)
    first = int(rng.integers(0, n - t + 1))
    return np.arange(first, first + t, dtype=np.int64)


def dense_chunks(n: int, t: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """All frames in chunks of T: (indices, mask) per chunk; padding repeats the last frame with mask False."""
    chunks = []
    for first in range(0, n, t):
        real = min(t, n - first)
        idx = np.concatenate([np.arange(first, first + real), np.full(t - real, n - 1)]).astype(np.int64)
        mask = np.arange(t) < real
        chunks.append((idx, mask))
    return chunks


def num_chunks(n: int, t: int) -> int:
    return -(-n // t)


def sample_clip(mode: str, n: int, t: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (T,) of one clip for the sampled modes (`all` goes through `dense_chunks`)."""
    if n <= 0 or t <= 0:
        raise FarreidError(f"cannot sample {t} frames from a tracklet of {n} frames")
    if mode == "restricted_random":
        return restricted_random(n, t, rng)
    if mode == "segment_begin":
        return segment_begin(n, t)
    if mode == "consecutive":
        return consecutive(n, t, rng)
    raise FarreidError(
        f"temporal sampling must be one of {SAMPLING_MODES[:3]} here (or 'all' for dense chunks), got {mode!r}"
    )
