"""Platform-Bridge Prompts (PBP): learnable tokens per prompt key and per block, joined to attention after ln_1.

A tracklet's key selects its prompt set; the tokens act as keys/values in the first `depth` blocks and
their outputs are dropped. The key is the camera id (as the reference), the platform (ground / aerial), or an
altitude or horizontal-distance bin from the tracklet's metadata.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from farreid.config.schema import PROMPT_KEYS
from farreid.errors import FarreidError


def tracing() -> bool:
    """True while torch.export / torch.compile / torch.jit trace the model: no data-dependent Python checks."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def num_prompt_keys(key: str, num_cameras: int, altitude_bins: Sequence[float], distance_bins: Sequence[float]) -> int:
    """How many prompt sets a key scheme needs. Bins: 0 = unknown (NaN, e.g. ground), 1.. = bins in order."""
    if key == "camera":
        if num_cameras <= 0:
            raise FarreidError("model.pbp.key=camera needs the number of camera ids (model.pbp.num_keys or the train set)")
        return num_cameras
    if key == "platform":
        return 2
    if key == "altitude":
        return len(altitude_bins) + 2
    if key == "distance":
        return len(distance_bins) + 2
    raise FarreidError(f"model.pbp.key must be one of {', '.join(PROMPT_KEYS)}; got {key!r}")


def metadata_bins(values: Tensor, edges: Sequence[float]) -> Tensor:
    """NaN -> 0; otherwise 1 + the number of edges <= value (values below the first edge -> 1)."""
    edges_t = torch.tensor(list(edges), dtype=torch.float32, device=values.device)
    bins = torch.bucketize(values.float().nan_to_num(0.0), edges_t, right=True) + 1
    return torch.where(torch.isnan(values), torch.zeros_like(bins), bins)


def keys_from_batch(
    batch: Mapping[str, Tensor], key: str, altitude_bins: Sequence[float], distance_bins: Sequence[float]
) -> Tensor:
    """The (B,) prompt key of each tracklet in a clip batch (see farreid's batch contract)."""
    field = {"camera": "camid", "platform": "platform", "altitude": "altitude", "distance": "distance"}[key]
    if field not in batch:
        raise FarreidError(f"model.pbp.key={key} needs '{field}' in the batch; it has {sorted(batch)}")
    values = batch[field]
    if key == "altitude":
        return metadata_bins(values, altitude_bins)
    if key == "distance":
        return metadata_bins(values, distance_bins)
    return values.long()


class PlatformPrompts(nn.Module):
    """`prompts` of shape [depth, length, keys, width], trunc-normal std 0.02."""

    def __init__(self, depth: int, length: int, num_keys: int, width: int):
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(depth, length, num_keys, width))
        nn.init.trunc_normal_(self.prompts, std=0.02)

    @property
    def depth(self) -> int:
        return self.prompts.shape[0]

    @property
    def num_keys(self) -> int:
        return self.prompts.shape[2]

    def forward(self, keys: Tensor, num_frames: int) -> list[Tensor]:
        """Per block, the (B*T, length, width) tokens of each frame's tracklet key."""
        if not tracing() and keys.numel() and (int(keys.min()) < 0 or int(keys.max()) >= self.num_keys):
            raise FarreidError(
                f"prompt keys must lie in [0, {self.num_keys}) (model.pbp.num_keys); got {keys.unique().tolist()}"
            )
        chosen = self.prompts[:, :, keys].permute(0, 2, 1, 3)  # (depth, B, length, width)
        depth, b, length, width = chosen.shape
        # each clip's tokens for its T frames; expand + flatten rather than repeat_interleave, which the ONNX
        # exporter turns into a fixed-shape Expand (wrong for other batch sizes)
        chosen = chosen.unsqueeze(2).expand(depth, b, num_frames, length, width).flatten(1, 2)  # (depth, B*T, length, width)
        return list(chosen.unbind(0))
