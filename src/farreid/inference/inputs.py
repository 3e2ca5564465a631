"""What `ReIDModel.embed` accepts, turned into tracklets the data layer's sampling and transforms can serve.

Accepted forms (each one tracklet, or a list of them):
- a tracklet folder of frame images, or a list of frame paths (read from disk like any dataset);
- a list of PIL images or (H, W, 3) uint8 arrays;
- a (T, 3, H, W) or (B, T, 3, H, W) tensor (or array), uint8 in [0, 255] or float in [0, 1], RGB;
- a `farreid.data.Tracklet` (which carries its own camera / platform metadata).

Files become `Tracklet` records (served by `farreid.data.ClipDataset`, exactly as in evaluation); in-memory
frames become `MemoryTracklet`s at the model's input size. uint8 frames are resized by PIL with the same
interpolation as decoded files, so a frame gives the same embedding whichever way it arrives. Float tensors at
another size are resized by `farreid.data.transforms.resize_clip` (bilinear, antialiased).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from farreid.data import PLATFORMS, ClipDataset, Tracklet
from farreid.data.decode import RESAMPLE, to_rgb
from farreid.data.scan import list_frames
from farreid.data.transforms import resize_clip
from farreid.errors import FarreidError


@dataclass(frozen=True)
class MemoryTracklet:
    """Frames already in memory, at the model's input size: (n, 3, H, W) uint8 or float in [0, 1]."""

    frames: torch.Tensor
    camid: int = 0
    platform: str = "ground"
    altitude: float | None = None
    distance: float | None = None
    pid: int = -1  # identity unknown

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise FarreidError(f"platform must be one of {PLATFORMS}, got {self.platform!r}")

    @property
    def platform_code(self) -> int:
        return PLATFORMS.index(self.platform)

    def __len__(self) -> int:
        return self.frames.shape[0]


AnyTracklet = Tracklet | MemoryTracklet


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _is_frame(x: Any) -> bool:
    return isinstance(x, Image.Image) or (isinstance(x, np.ndarray) and x.ndim in (2, 3))


def _is_clip(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 4


def _structure(inputs: Any) -> list[Any]:
    """Split `inputs` into one entry per tracklet (each entry is a single-tracklet form)."""
    if _is_frame(inputs):
        return [[inputs]]
    if isinstance(inputs, Tracklet) or _is_path(inputs) or _is_clip(inputs):
        return [inputs]
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        if inputs.ndim == 5:
            return list(inputs)
        raise FarreidError(f"a frame tensor must be (T, 3, H, W) or (B, T, 3, H, W), got shape {tuple(inputs.shape)}")
    if not isinstance(inputs, Sequence) or isinstance(inputs, (str, bytes)):
        raise FarreidError(f"cannot embed a {type(inputs).__name__}; see ReIDModel.embed for the accepted inputs")
    if len(inputs) == 0:
        raise FarreidError("nothing to embed: the input list is empty")
    if all(_is_path(x) for x in inputs):
        dirs = [Path(x).is_dir() for x in inputs]
        if all(dirs):
            return list(inputs)  # several tracklet folders
        if not any(dirs):
            return [list(inputs)]  # the frame paths of one tracklet
        raise FarreidError("a list of paths must hold either frame files (one tracklet) or tracklet folders, not both")
    if all(_is_frame(x) for x in inputs):
        return [list(inputs)]
    return list(inputs)


def _per_item(value: Any, n: int, what: str) -> list[Any]:
    """A scalar repeated n times, or a sequence of length n."""
    if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)):
        values = list(value.tolist() if isinstance(value, (np.ndarray, torch.Tensor)) else value)
        if len(values) != n:
            raise FarreidError(f"{what} has {len(values)} values for {n} tracklets")
        return values
    return [value] * n


def _pil_frame(frame: Any, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """(H, W, 3) uint8 at `size`, resized exactly as `farreid.data.decode.decode_frame` resizes files."""
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8:
            raise FarreidError(f"frame arrays must be uint8 (H, W, 3), got {frame.dtype}; pass float clips as tensors")
        frame = Image.fromarray(frame)
    try:
        image = to_rgb(frame)
    except ValueError as exc:
        raise FarreidError(f"frame image: {exc}") from None
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), RESAMPLE[interpolation])
    return np.asarray(image)


def _frames_tensor(frames: list[Any], size: tuple[int, int], interpolation: str) -> torch.Tensor:
    stack = np.stack([_pil_frame(f, size, interpolation) for f in frames])  # (n, H, W, 3)
    return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()


def _clip_tensor(clip: torch.Tensor | np.ndarray, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    clip = torch.from_numpy(np.ascontiguousarray(clip)) if isinstance(clip, np.ndarray) else clip.detach().cpu()
    if clip.ndim != 4 or clip.shape[1] != 3 or clip.shape[0] == 0:
        raise FarreidError(f"a tracklet tensor must be (T, 3, H, W) with T >= 1, got shape {tuple(clip.shape)}")
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip if clip.dtype == torch.uint8 else clip.float()
    if clip.dtype == torch.uint8:
        return _frames_tensor(list(clip.permute(0, 2, 3, 1).numpy()), size, interpolation)
    if not clip.is_floating_point():
        raise FarreidError(f"tracklet tensors must be uint8 or float, got {clip.dtype}")
    return resize_clip(clip, size)


def _folder_tracklet(folder: Path, meta: dict[str, Any]) -> Tracklet:
    names = list_frames(folder)
    return Tracklet([str(folder / n) for n in names], -1, name=folder.name, **meta)


def _one(entry: Any, i: int, meta: dict[str, Any], size: tuple[int, int], interpolation: str) -> AnyTracklet:
    if isinstance(entry, Tracklet):
        return entry
    if _is_path(entry):
        path = Path(entry)
        if path.is_dir():
            return _folder_tracklet(path, meta)
        entry = [entry]
    if _is_clip(entry):
        return MemoryTracklet(_clip_tensor(entry, size, interpolation), **meta)
    if isinstance(entry, Sequence) and len(entry) and all(_is_path(x) for x in entry):
        missing = [str(x) for x in entry if not Path(x).is_file()]
        if missing:
            raise FarreidError(f"frame file not found: {missing[0]}")
        return Tracklet([str(x) for x in entry], -1, name=f"tracklet{i}", **meta)
    if isinstance(entry, Sequence) and len(entry) and all(_is_frame(x) for x in entry):
        return MemoryTracklet(_frames_tensor(list(entry), size, interpolation), **meta)
    raise FarreidError(
        f"input {i}: expected a tracklet folder, frame paths, PIL images / uint8 arrays, a (T, 3, H, W) tensor or a "
        f"Tracklet; got {type(entry).__name__}" + (" (empty)" if isinstance(entry, Sequence) and not entry else "")
    )


def as_tracklets(
    inputs: Any,
    size: tuple[int, int],
    interpolation: str = "bicubic",
    *,
    camid: int | Sequence[int] = 0,
    platform: str | Sequence[str] = "ground",
    altitude: float | None | Sequence[float | None] = None,
    distance: float | None | Sequence[float | None] = None,
) -> list[AnyTracklet]:
    """One record per tracklet of `inputs`; metadata are scalars or one value per tracklet."""
    entries = _structure(inputs)
    n = len(entries)
    columns = {
        "camid": [int(c) for c in _per_item(camid, n, "camid")],
        "platform": _per_item(platform, n, "platform"),
        "altitude": [None if v is None or math.isnan(v) else float(v) for v in _per_item(altitude, n, "altitude")],
        "distance": [None if v is None or math.isnan(v) else float(v) for v in _per_item(distance, n, "distance")],
    }
    return [_one(e, i, {k: v[i] for k, v in columns.items()}, size, interpolation) for i, e in enumerate(entries)]


class MemoryClips(ClipDataset):
    """Clips of in-memory tracklets, item for item as `farreid.data.ClipDataset` serves files (it is one, reading
    its frames from the tensors instead of the disk)."""

    def read_frames(self, tracklet: MemoryTracklet, frame_idx: np.ndarray) -> torch.Tensor:
        return tracklet.frames[torch.from_numpy(frame_idx)]
