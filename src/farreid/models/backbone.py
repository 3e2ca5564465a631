"""The backbone seam: what FarReID needs from a pair of vision-language towers, and the registry of families.

A *family* (CLIP, SigLIP, ...) is a way of building towers: its named architectures (specs, plain frozen
dataclasses with a `vision` part that has `layers` and `patch_size`), the checkpoints it can read, and how it
rebuilds its towers from the record a trained FarReID checkpoint keeps. FarReID, the identity text prompts,
the engine and the inference loader talk to towers only through the protocols below, so "which blocks are the
last N", "which token is the image feature" and "which position is the text feature" are the family's business.

The spec tables are imported eagerly (they are torch-free data, read by config validation); a family's towers
live in the module its entry names and are imported only when towers are built.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from farreid.errors import FarreidError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from farreid.models.clip.layers import SideBranches


@dataclass
class TowerFeatures:
    """Per-image features of one image-tower pass (N = images)."""

    penultimate: Tensor  # (N, width) the second-to-last block's summary token, un-normalised
    final: Tensor  # (N, width) the last block's summary after the final norm
    projected: Tensor  # (N, output_dim) the image embedding of the joint image-text space


@dataclass(frozen=True)
class PromptTemplate:
    """Token ids of an identity prompt whose `n_learned` positions from `start` are replaced by learned
    vectors; the text feature is read at `read_index`."""

    ids: tuple[int, ...]  # exactly the text tower's context length
    start: int
    read_index: int


class ImageTower(Protocol):
    """Frames in, penultimate / final / projected features out, with the two per-block hooks.

    `extra_tokens[i]` (N, P, width) join block i's attention as keys/values only (platform prompts);
    `sides[i]` adds branches parallel to block i's attention and MLP (the VSLA adapters).
    `no_grad_prefix` = k >= 0 runs the embedding and the first k blocks without autograd; -1 keeps it everywhere.
    """

    width: int
    layers: int
    output_dim: int
    image_size: tuple[int, int]

    @property
    def blocks(self) -> Sequence[nn.Module]: ...  # in order; the last N are what `finetune_last_n` trains

    def set_grad_checkpointing(self, enabled: bool = True) -> None: ...

    def frame_features(
        self,
        images: Tensor,
        extra_tokens: Sequence[Tensor | None] | None = None,
        sides: Sequence[SideBranches | None] | None = None,
        no_grad_prefix: int = -1,
    ) -> TowerFeatures: ...


class TextTower(Protocol):
    """What the identity text prompts need: word embeddings to splice learned vectors into, and a readout."""

    width: int
    context_length: int
    token_embedding: nn.Embedding

    def prompt_template(self, n_learned: int) -> PromptTemplate: ...

    def forward_embeddings(self, embeddings: Tensor, read_index: Tensor) -> Tensor: ...


class Backbone(Protocol):
    """A pair of towers (an `nn.Module`): `visual`, `text` (None for vision-only weights) and the spec."""

    family: str
    spec: Any
    visual: ImageTower
    text: TextTower | None

    def encode_image(self, images: Tensor) -> Tensor: ...

    def encode_text(self, token_ids: Tensor) -> Tensor: ...


class FamilyTowers(Protocol):
    """The module a family entry names. `build` keywords: image_size (H, W) or None for the spec's own,
    stride (None = patch size), pos_resize, autocast (None | bf16 | fp16)."""

    def reads(self, path: Path) -> bool:
        """True when `path` is a checkpoint of this family (cheap: names and small files only)."""

    def create(self, backbone: str, pretrained: str | Path, activation: str, allow_torchscript: bool, **build: Any) -> Backbone:
        """A named architecture with random weights, or the towers of a checkpoint."""

    def rebuild(self, spec: Mapping[str, Any], weights: Mapping[str, Tensor], **build: Any) -> Backbone:
        """Empty towers for a trained model's recorded spec (`asdict` of the family's spec), checked against
        `weights`, the towers' own tensors (FarReID's `backbone.*` without the prefix), where the family can."""


@dataclass(frozen=True)
class BackboneFamily:
    name: str
    specs: Mapping[str, Any]  # named architectures
    towers: str  # module implementing FamilyTowers

    def module(self) -> FamilyTowers:
        return importlib.import_module(self.towers)  # type: ignore[return-value]


_FAMILIES: dict[str, BackboneFamily] = {}
DEFAULT_FAMILY = "clip"  # asked last, and builds whatever no family claims (its reader says what it expected)


def register_family(family: BackboneFamily) -> None:
    """Add a family; its spec names must not collide with another family's (a name picks the family)."""
    for other in _FAMILIES.values():
        if other.name == family.name:
            raise FarreidError(f"backbone family '{family.name}' is registered already")
        shared = set(other.specs) & set(family.specs)
        if shared:
            raise FarreidError(f"backbone family '{family.name}' reuses {other.name}'s spec names {sorted(shared)}")
    _FAMILIES[family.name] = family


def backbone_family(name: str) -> BackboneFamily:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise FarreidError(f"unknown backbone family '{name}'; known: {', '.join(_FAMILIES)}") from None


def named_spec(name: str) -> Any | None:
    """The spec a backbone name stands for in any family, or None (a path, `auto`, or unknown)."""
    for family in _FAMILIES.values():
        if name in family.specs:
            return family.specs[name]
    return None


def family_for(backbone: str, pretrained: str | Path = "") -> BackboneFamily:
    """The family that owns a backbone name, else the one whose reader claims the checkpoint path."""
    for family in _FAMILIES.values():
        if backbone in family.specs:
            return family
    from farreid.models.clip.shipped import resolve_pretrained

    readers = sorted(_FAMILIES.values(), key=lambda family: family.name == DEFAULT_FAMILY)  # the default last
    for candidate in (pretrained, backbone):
        path = resolve_pretrained(candidate) if candidate else None
        if path is not None and path.exists():
            for family in readers:
                if family.module().reads(path):
                    return family
    return _FAMILIES[DEFAULT_FAMILY]


def create_backbone(
    backbone: str,
    pretrained: str | Path = "",
    image_size: tuple[int, int] | None = None,
    stride: int | None = None,
    pos_resize: str = "bicubic",
    activation: str = "auto",
    allow_torchscript: bool = False,
    autocast: str | None = None,
) -> Backbone:
    """Towers for `model.backbone` / `model.pretrained`, built by the family that owns them."""
    family = family_for(backbone, pretrained)
    return family.module().create(
        backbone, pretrained, activation, allow_torchscript,
        image_size=image_size, stride=stride, pos_resize=pos_resize, autocast=autocast,
    )


def backbone_record(backbone: Backbone) -> dict[str, Any]:
    """What a trained checkpoint stores to rebuild the towers without their weight file."""
    return {"family": backbone.family, "spec": asdict(backbone.spec)}


def rebuild_backbone(
    record: Mapping[str, Any],
    weights: Mapping[str, Tensor],
    image_size: tuple[int, int],
    stride: int | None = None,
    pos_resize: str = "bicubic",
) -> Backbone:
    """Empty towers for a trained checkpoint's `backbone_record`; `weights` are the towers' own tensors, which the
    family may check the record against. Raises ValueError / TypeError on a record that is not sane."""
    if not isinstance(record, Mapping) or set(record) != {"family", "spec"}:
        raise ValueError("it is not a mapping of exactly 'family' and 'spec'")
    if record["family"] not in _FAMILIES:
        raise ValueError(f"unknown family {record['family']!r} (known: {', '.join(_FAMILIES)})")
    return _FAMILIES[record["family"]].module().rebuild(
        record["spec"], weights, image_size=image_size, stride=stride, pos_resize=pos_resize
    )


def check_spec_fields(data: Mapping[str, Any], fields: Sequence[str], part: str, token_ids: Sequence[str] = ()) -> None:
    """A recorded spec part holds exactly `fields`, each a positive integer of a plausible size (the
    `token_ids` fields may be 0)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"'{part}' is not a mapping")
    unknown, missing = set(data) - set(fields), set(fields) - set(data)
    if unknown or missing:
        raise ValueError(f"'{part}' has unknown key(s) {sorted(unknown)} / lacks {sorted(missing)}")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or not int(key not in token_ids) <= value <= 1 << 20:
            raise ValueError(f"{part}.{key} = {value!r} is not a positive integer of a plausible size")


def _register_builtin() -> None:
    from farreid.models.clip.configs import CLIP_CONFIGS
    from farreid.models.siglip.configs import SIGLIP_CONFIGS

    register_family(BackboneFamily("clip", CLIP_CONFIGS, "farreid.models.clip.family"))
    register_family(BackboneFamily("siglip", SIGLIP_CONFIGS, "farreid.models.siglip.family"))


_register_builtin()
