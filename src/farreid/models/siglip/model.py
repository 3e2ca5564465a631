"""A SigLIP pair of towers built from a spec, with the sigmoid loss's learned temperature and bias."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.errors import FarreidError
from farreid.models.siglip.configs import SiglipSpec
from farreid.models.siglip.text import SiglipTextTower
from farreid.models.siglip.vision import SiglipVisionTower


class SigLIP(nn.Module):
    """`visual`, `text` (may be absent), `logit_scale` and `logit_bias` (logits = scale.exp() cos + bias)."""

    family = "siglip"

    def __init__(
        self,
        spec: SiglipSpec,
        image_size: tuple[int, int] | None = None,
        stride: int | None = None,
        pos_resize: str = "bicubic",
        autocast: str | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.visual = SiglipVisionTower(spec.vision, image_size, stride, pos_resize, autocast)
        self.text = SiglipTextTower(spec.text) if spec.text else None
        self.logit_scale = nn.Parameter(torch.tensor([math.log(10.0)]))  # SigLIP's initial temperature
        self.logit_bias = nn.Parameter(torch.tensor([-10.0]))
        self.tokenizer = None  # a `SiglipTokenizer` when the towers were read from a folder with spiece.model

    def encode_image(self, images: Tensor) -> Tensor:
        return self.visual(images).projected

    def encode_text(self, token_ids: Tensor) -> Tensor:
        if self.text is None:
            raise FarreidError(f"backbone '{self.spec.name}' has no text tower")
        return self.text(token_ids)

    def logits_per_text(self, token_ids: Tensor, images: Tensor) -> Tensor:
        """(texts, images) sigmoid-loss logits, as `SiglipModel` computes them."""
        text = F.normalize(self.encode_text(token_ids), dim=-1)
        image = F.normalize(self.encode_image(images), dim=-1)
        return text @ image.t() * self.logit_scale.exp() + self.logit_bias
