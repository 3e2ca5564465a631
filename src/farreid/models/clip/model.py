"""A CLIP pair of towers, built from a spec, filled from OpenAI-named weights with strict checking."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from farreid.errors import FarreidError
from farreid.models.clip.configs import ClipSpec
from farreid.models.clip.text import TextTower
from farreid.models.clip.vision import VisionTower, resize_pos_embed

# Keys OpenAI's archives carry besides the weights; they describe the model and are not parameters.
METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


class CLIP(nn.Module):
    """`visual` (image tower), `text` (text tower, may be absent) and `logit_scale`."""

    family = "clip"

    def __init__(
        self,
        spec: ClipSpec,
        image_size: tuple[int, int] | None = None,
        stride: int | None = None,
        pos_resize: str = "bicubic",
        autocast: str | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.visual = VisionTower.from_spec(
            spec.vision, image_size, stride=stride, activation=spec.activation, pos_resize=pos_resize,
            autocast=autocast,
        )
        self.text = TextTower.from_spec(spec.text, activation=spec.activation) if spec.text else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: Tensor) -> Tensor:
        return self.visual(images).projected

    def encode_text(self, token_ids: Tensor) -> Tensor:
        if self.text is None:
            raise FarreidError(f"backbone '{self.spec.name}' has no text tower")
        return self.text(token_ids)

    def openai_state_dict(self) -> dict[str, Tensor]:
        """The weights under OpenAI's names (text keys un-prefixed), e.g. to save an OpenAI-style file."""
        return {k[len("text."):] if k.startswith("text.") else k: v for k, v in self.state_dict().items()}

    def load_openai_state_dict(self, state: dict[str, Tensor], source: str = "state dict") -> None:
        """Load weights named as in OpenAI's CLIP (`visual.*`, text keys un-prefixed), strictly.

        Tensors are cast to the model's dtype; the checkpoint's square positional grid is resized (in fp32)
        to this tower's grid. Any missing or unexpected weight is an error naming `source`.
        """
        visual, text, rest = split_openai_state_dict(state)
        pos = visual.get("positional_embedding")
        if pos is not None and pos.shape[0] != self.visual.positional_embedding.shape[0]:
            side = math.isqrt(pos.shape[0] - 1)
            if side * side != pos.shape[0] - 1:
                raise FarreidError(f"{source}: positional embedding of {pos.shape[0]} rows is not 1 + a square grid")
            visual["positional_embedding"] = resize_pos_embed(
                pos.float(), (side, side), self.visual.grid, self.visual.pos_resize
            )
        load_strict(self.visual, visual, source, "visual.")
        if self.text is not None:
            load_strict(self.text, text, source, "")
        elif text:
            raise FarreidError(f"{source}: holds text-tower weights but the model was built without a text tower")
        if "logit_scale" in rest:
            self.logit_scale.data.copy_(rest.pop("logit_scale"))
        for key in METADATA_KEYS:
            rest.pop(key, None)
        if rest:
            raise FarreidError(f"{source}: unexpected weights {sorted(rest)[:5]} (not part of a CLIP ViT)")


def split_openai_state_dict(state: dict[str, Tensor]) -> tuple[dict, dict, dict]:
    """(visual keys without `visual.`, text-tower keys, everything else)."""
    text_prefixes = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
    visual, text, rest = {}, {}, {}
    for key, value in state.items():
        if key.startswith("visual."):
            visual[key[len("visual."):]] = value
        elif key.startswith(text_prefixes):
            text[key] = value
        else:
            rest[key] = value
    return visual, text, rest


def load_strict(module: nn.Module, state: dict[str, Tensor], source: str, prefix: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {[prefix + k for k in missing[:5]]}")
        if unexpected:
            parts.append(f"unexpected {[prefix + k for k in unexpected[:5]]}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape of {prefix}{k} is {tuple(state[k].shape)}, the model has {tuple(own[k].shape)}")
        raise FarreidError(f"{source} does not match the {type(module).__name__}: " + "; ".join(parts))
    dtype = next(module.parameters()).dtype
    module.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
