"""FarReID: the far-distance video ReID model (VSLA adapters, platform prompts, last-N fine-tuning,
temporal pooling, BNNeck heads, identity text prompts) assembled on any registered backbone family's towers
(CLIP, SigLIP; see `farreid.models.backbone`).

Clips are (B, T, 3, H, W); the B*T frames run through the image tower as one batch (frames of a clip
consecutive), with every block's adapter bound to that layout and the clip's prompt tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.config.schema import TRAIN_STAGES, ModelConfig
from farreid.errors import FarreidError
from farreid.models.adapters import VSLAdapter
from farreid.models.backbone import Backbone, backbone_record, create_backbone
from farreid.models.heads import BNNeckClassifier
from farreid.models.pooling import TemporalPooling
from farreid.models.prompts import PlatformPrompts, keys_from_batch, num_prompt_keys, tracing
from farreid.models.text_prompt import TextPromptLearner


@dataclass
class ReIDOutput:
    """What a training step needs from one forward pass (all per tracklet, frame-pooled, pre-BN features)."""

    logits: list[Tensor]  # [BNNeck classifier on the final feature, on the projected one], each (B, num_classes)
    triplet_features: list[Tensor]  # [penultimate, final, projected] (CLIP: the CLS of each; see TowerFeatures)
    projected: Tensor  # (B, d_proj), for the image-text losses


@dataclass
class FrameFeatures:
    """The image tower's `TowerFeatures` of every frame (CLIP: raw penultimate CLS, final CLS after ln_post,
    projected CLS)."""

    penultimate: Tensor  # (B, T, width)
    final: Tensor  # (B, T, width)
    projected: Tensor  # (B, T, d_proj)


class FarReID(nn.Module):
    """Built from the `model` section of the config: `FarReID(cfg.model, num_classes, num_keys)`, or in Python
    `FarReID(ModelConfig(backbone="test", image_size=[64, 32]), num_classes=4)`.

    `num_keys` is the number of camera ids (used when `pbp.key="camera"` and `pbp.num_keys` is 0; other keys size
    themselves). `finetune_last_n` blocks of the image tower train at `finetune_lr_mult` x the base rate; equal to
    the depth it trains the whole image tower (patch embedding, positions, ln_post and proj too: training from
    scratch). `backbone` passes ready towers of any backbone family (e.g. rebuilt from a trained checkpoint, whose
    weights replace `pretrained`'s); then the backbone, weights and input-size settings are not read.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int, num_keys: int = 0, backbone: Backbone | None = None):
        super().__init__()
        if num_classes <= 0:
            raise FarreidError(f"num_classes must be > 0, got {num_classes}")
        self.cfg = cfg
        self.backbone = backbone or create_backbone(
            cfg.backbone, cfg.pretrained, tuple(cfg.image_size), cfg.stride or None, cfg.pos_resize, cfg.activation,
            cfg.allow_torchscript,
        )
        if self.backbone.text is None:
            raise FarreidError(f"backbone {cfg.backbone or cfg.pretrained} has no text tower; the identity text prompts need one")
        visual = self.backbone.visual
        depth, width, proj_dim = visual.layers, visual.width, visual.output_dim
        if not 0 <= cfg.finetune_last_n <= depth:
            raise FarreidError(f"model.finetune_last_n={cfg.finetune_last_n} must lie in [0, {depth}] (the tower's depth)")
        visual.set_grad_checkpointing(cfg.grad_checkpointing)

        adapter, pbp = cfg.adapter, cfg.pbp
        self.adapters = (
            nn.ModuleList(VSLAdapter(width, adapter.bottleneck, adapter.zero_init) for _ in range(depth))
            if adapter.enabled else None
        )
        self.prompts = None
        if pbp.enabled:
            prompt_depth = round(0.75 * depth) if pbp.depth == -1 else pbp.depth
            if not 1 <= prompt_depth <= depth:
                raise FarreidError(f"model.pbp.depth={pbp.depth} must lie in [1, {depth}] (or -1 = 3/4 of the blocks)")
            cameras = pbp.num_keys if pbp.num_keys > 0 else num_keys
            keys = num_prompt_keys(pbp.key, cameras, pbp.altitude_bins, pbp.distance_bins)
            self.prompts = PlatformPrompts(prompt_depth, pbp.length, keys, width)
        self.pool = TemporalPooling(width, cfg.pooling)  # shared by the penultimate and the final feature
        self.pool_proj = TemporalPooling(proj_dim, cfg.pooling)
        self.head = BNNeckClassifier(width, num_classes)
        self.head_proj = BNNeckClassifier(proj_dim, num_classes)
        text = self.backbone.text
        template = text.prompt_template(2 * cfg.text.n_ctx + cfg.text.n_id_tokens)
        self.prompt_learner = TextPromptLearner(num_classes, text.width, template, cfg.text.n_ctx, cfg.text.n_id_tokens)
        self.set_stage("stage2")

    def checkpoint_info(self) -> dict:
        """What a checkpoint needs besides the config and the weights to rebuild this model without reading
        `model.pretrained` again: the backbone family and its spec, and the number of prompt keys."""
        return {"backbone": backbone_record(self.backbone), "num_keys": self.prompts.num_keys if self.prompts is not None else 0}

    @property
    def triplet_feature_dims(self) -> tuple[int, int, int]:
        """Widths of `ReIDOutput.triplet_features` (they size learned loss state: the centre loss's centres)."""
        visual = self.backbone.visual
        return visual.width, visual.width, visual.output_dim

    # ----------------------------------------------------------------- what trains
    def _tail_parameters(self) -> list[tuple[str, nn.Parameter]]:
        visual = self.backbone.visual
        named = [(f"backbone.visual.{n}", p) for n, p in visual.named_parameters()]
        if self.cfg.finetune_last_n == visual.layers:
            return named
        tail = {id(p) for block in visual.blocks[visual.layers - self.cfg.finetune_last_n :] for p in block.parameters()}
        return [(n, p) for n, p in named if id(p) in tail]

    def _new_parameters(self) -> list[tuple[str, nn.Parameter]]:
        parts = {"adapters": self.adapters, "prompts": self.prompts, "pool": self.pool, "pool_proj": self.pool_proj,
                 "head": self.head, "head_proj": self.head_proj}
        return [
            (f"{name}.{n}", p)
            for name, module in parts.items()
            if module is not None
            for n, p in module.named_parameters()
            if not n.endswith("bn.bias")  # BNNeck bias stays frozen
        ]

    def set_stage(self, stage: str) -> None:
        """stage1: only the text prompt learner trains; stage2: new modules + the image tower's tail.
        Every other parameter gets requires_grad=False."""
        if stage not in TRAIN_STAGES:
            raise FarreidError(f"stage must be one of {', '.join(TRAIN_STAGES)}; got {stage!r}")
        self.requires_grad_(False)
        if stage == "stage1":
            self.prompt_learner.requires_grad_(True)
        else:
            for _, p in self._new_parameters() + self._tail_parameters():
                p.requires_grad_(True)
        self.stage = stage

    def parameter_groups(self, stage: str = "stage2") -> list[dict]:
        """Optimiser groups: stage2 -> "new" (lr_mult 1) and "backbone_tail" (lr_mult `finetune_lr_mult`);
        stage1 -> "prompt_learner". Each group: name, params, param_names, lr_mult; empty groups are left out."""
        if stage == "stage1":
            named = [[(f"prompt_learner.{n}", p) for n, p in self.prompt_learner.named_parameters()]]
            specs = [("prompt_learner", 1.0)]
        else:
            named = [self._new_parameters(), self._tail_parameters()]
            specs = [("new", 1.0), ("backbone_tail", self.cfg.finetune_lr_mult)]
        return [
            {"name": name, "params": [p for _, p in group], "param_names": [n for n, _ in group], "lr_mult": mult}
            for (name, mult), group in zip(specs, named)
            if group
        ]

    def parameter_counts(self) -> dict[str, int]:
        return {
            "total": sum(p.numel() for p in self.parameters()),
            "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
        }

    @property
    def _no_grad_prefix(self) -> int:
        """Leading part of the image tower that needs no autograd: none when the whole tower trains; the
        embedding when adapters/prompts start at block 0 (the graph must flow through every frozen block
        to reach them); else the embedding and every block before the tail."""
        visual = self.backbone.visual
        if self.cfg.finetune_last_n == visual.layers:
            return -1
        if self.adapters is not None or self.prompts is not None:
            return 0
        return visual.layers - self.cfg.finetune_last_n

    # ----------------------------------------------------------------- forward passes
    def prompt_keys(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B,) prompt keys of a clip batch per `pbp.key` (camera id, platform, altitude/distance bin)."""
        pbp = self.cfg.pbp
        return keys_from_batch(batch, pbp.key, pbp.altitude_bins, pbp.distance_bins)

    def frame_features(self, clip: Tensor, keys: Tensor | None = None, mask: Tensor | None = None) -> FrameFeatures:
        """Per-frame features with adapters and prompts. clip (B, T, 3, H, W); mask (B, T) True = real."""
        b, t = clip.shape[:2]
        if mask is not None and not tracing() and bool(mask.all()):
            mask = None  # nothing padded: the unmasked attention kernels are faster
        sides = [adapter.bind(t, mask) for adapter in self.adapters] if self.adapters is not None else None
        extra = None
        if self.prompts is not None:
            if keys is None:
                raise FarreidError("prompt keys are required when platform prompts are enabled (model.prompt_keys(batch))")
            extra = self.prompts(keys.to(clip.device), t)
        out = self.backbone.visual.frame_features(
            clip.flatten(0, 1), extra_tokens=extra, sides=sides, no_grad_prefix=self._no_grad_prefix
        )
        return FrameFeatures(
            penultimate=out.penultimate.reshape(b, t, -1),
            final=out.final.reshape(b, t, -1),
            projected=out.projected.reshape(b, t, -1),
        )

    def _pooled(self, clip: Tensor, keys: Tensor | None, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        frames = self.frame_features(clip, keys, mask)
        return (
            self.pool(frames.penultimate, mask),
            self.pool(frames.final, mask),
            self.pool_proj(frames.projected, mask),
        )

    def forward(self, clip: Tensor, keys: Tensor | None = None, mask: Tensor | None = None) -> ReIDOutput:
        penultimate, final, projected = self._pooled(clip, keys, mask)
        logits = [self.head(final), self.head_proj(projected)]
        return ReIDOutput(logits=logits, triplet_features=[penultimate, final, projected], projected=projected)

    def embed(self, clip: Tensor, keys: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """The test feature: L2-normalised concat(final, projected), pooled, before BN (B, width + d_proj)."""
        _, final, projected = self._pooled(clip, keys, mask)
        return F.normalize(torch.cat([final, projected], dim=1).float(), dim=1)

    @torch.no_grad()
    def frame_pooled_projection(self, clip: Tensor, mask: Tensor | None = None) -> Tensor:
        """Stage 1's image feature: the plain image tower (no adapters, no prompts), its projected feature averaged
        over the real frames (B, d_proj)."""
        b, t = clip.shape[:2]
        projected = self.backbone.encode_image(clip.flatten(0, 1)).reshape(b, t, -1).float()
        if mask is None:
            return projected.mean(dim=1)
        weights = mask.to(projected.dtype).unsqueeze(-1)
        return (projected * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def text_features(self, labels: Tensor) -> Tensor:
        """(n,) identity labels -> (n, d_proj) features of their learned prompts through the frozen text tower."""
        return self.prompt_learner(labels, self.backbone.text)
