"""The training losses of the two-stage recipe, as small functions plus one weighted combination.

All take float32 tensors (callers cast autocast outputs) and return scalar means over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from farreid.engine.protocols import ReIDOutputLike


def label_smoothed_ce(logits: Tensor, targets: Tensor, epsilon: float = 0.1) -> Tensor:
    """Cross-entropy against (1 - eps) one-hot + eps / C uniform targets."""
    return F.cross_entropy(logits, targets, label_smoothing=epsilon)


def pairwise_distance(features: Tensor, metric: str = "cosine") -> Tensor:
    """(B, B) distances: `cosine` = 1 - cos of L2-normalised features, `euclidean` = L2 (stable at zero)."""
    if metric == "cosine":
        normed = F.normalize(features, dim=1)
        return 1.0 - normed @ normed.t()
    if metric == "euclidean":
        sq = features.pow(2).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * features @ features.t()
        return d2.clamp_min(1e-12).sqrt()
    raise ValueError(f"triplet metric must be 'cosine' or 'euclidean', got {metric!r}")


def batch_hard_triplet(features: Tensor, pids: Tensor, margin: float = 0.3, metric: str = "cosine") -> Tensor:
    """Batch-hard triplet: for each anchor, its farthest positive against its nearest negative.

    Anchors without a negative in the batch are left out; a batch with none of them gives zero (kept in the graph).
    """
    dist = pairwise_distance(features, metric)
    same = pids[:, None] == pids[None, :]
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    valid = torch.isfinite(hardest_neg)
    if not bool(valid.any()):
        return features.sum() * 0.0
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()


def supcon(
    anchors: Tensor, contrasts: Tensor, anchor_labels: Tensor, contrast_labels: Tensor, temperature: float = 1.0
) -> Tensor:
    """Supervised contrastive loss: mean log-probability of the same-label contrasts for each anchor.

    Image->text uses image features as anchors and the text features of the batch labels as contrasts;
    text->image swaps them. Features are used as given (the recipe does not normalise them).
    """
    logits = anchors @ contrasts.t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (anchor_labels[:, None] == contrast_labels[None, :]).to(log_prob.dtype)
    per_anchor = (positive * log_prob).sum(1) / positive.sum(1).clamp_min(1.0)
    return -per_anchor.mean()


def image_to_text_ce(image_features: Tensor, text_table: Tensor, pids: Tensor, epsilon: float = 0.1) -> Tensor:
    """Identity classification with the (fixed) text features of every identity as the classifier weights."""
    return label_smoothed_ce(image_features @ text_table.t(), pids, epsilon)


@dataclass(frozen=True)
class ReIDLoss:
    """The stage-2 objective; terms with weight 0 are still computed (times 0) so every output keeps a gradient
    path, which lets DistributedDataParallel run without `find_unused_parameters`."""

    id_weight: float = 0.25
    label_smoothing: float = 0.1
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    triplet_metric: str = "cosine"
    i2t_weight: float = 1.0
    supcon_i2t_weight: float = 1.0
    supcon_t2i_weight: float = 1.0

    @property
    def uses_text(self) -> bool:
        return (self.i2t_weight, self.supcon_i2t_weight, self.supcon_t2i_weight) != (0.0, 0.0, 0.0)

    def __call__(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None = None) -> dict[str, Tensor]:
        """Weighted terms and their sum under `loss`; text terms need the (num_classes, d_proj) text table."""
        terms = {
            "id": self.id_weight * sum(label_smoothed_ce(z.float(), pids, self.label_smoothing) for z in out.logits),
            "triplet": self.triplet_weight
            * sum(batch_hard_triplet(f.float(), pids, self.triplet_margin, self.triplet_metric) for f in out.triplet_features),
        }
        if self.uses_text:
            if text_table is None:
                raise ValueError("the image-text loss terms need the identity text features (run stage 1 first)")
            image = out.projected.float()
            text = text_table.float()
            batch_text = text[pids]
            terms["i2t"] = self.i2t_weight * image_to_text_ce(image, text, pids, self.label_smoothing)
            terms["supcon_i2t"] = self.supcon_i2t_weight * supcon(image, batch_text, pids, pids)
            terms["supcon_t2i"] = self.supcon_t2i_weight * supcon(batch_text, image, pids, pids)
        terms["loss"] = sum(terms.values())  # type: ignore[assignment]
        return terms


def prompt_loss(image_features: Tensor, text_features: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """The stage-1 objective: image->text plus text->image SupCon between cached image and learned text features."""
    i2t = supcon(image_features, text_features, labels, labels)
    t2i = supcon(text_features, image_features, labels, labels)
    return {"supcon_i2t": i2t, "supcon_t2i": t2i, "loss": i2t + t2i}
