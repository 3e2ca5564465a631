"""The training losses of the two-stage recipe: small functions, and the stage-2 criterion made of named terms.

All take float32 tensors (callers cast autocast outputs) and return scalar means over the batch.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farreid.config.schema import LossConfig
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


def centre_loss(features: Tensor, centres: Tensor, pids: Tensor) -> Tensor:
    """Centre loss (Wen et al. 2016): half the squared distance of each feature to its identity's centre, averaged
    over the batch (a mean, not Wen's sum, so the weight does not depend on the batch size)."""
    return 0.5 * (features - centres[pids]).pow(2).sum(1).mean()


class LossTerm(nn.Module, abc.ABC):
    """One named term of the stage-2 objective; its weight is the `LossConfig` field `weight_key`.

    `name` is the term's metric in the logs. `needs_text`: it reads the identity text table. `keeps_graph`: it is
    evaluated (x 0) even at weight 0, because it is the one path from a model output (classifier logits, pooled
    features) to the loss, and DistributedDataParallel without `find_unused_parameters` needs every trainable
    parameter in the graph; any other term of weight 0 is not built. Learned state of a term (its parameters)
    trains at the stage-2 rate x `lr_mult`.
    """

    name: ClassVar[str]
    weight_key: ClassVar[str]
    needs_text: ClassVar[bool] = False
    keeps_graph: ClassVar[bool] = False
    lr_mult: float = 1.0

    def __init__(self, config: LossConfig, *, num_classes: int, feature_dims: Sequence[int]):
        super().__init__()
        self.weight = float(getattr(config, self.weight_key))

    @abc.abstractmethod
    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        """The unweighted term on the global batch (float32 inputs, scalar mean)."""


class IdentityLoss(LossTerm):
    """Label-smoothed CE on each BNNeck classifier, summed."""

    name, weight_key, keeps_graph = "id", "id_weight", True

    def __init__(self, config: LossConfig, **shapes: Any):
        super().__init__(config, **shapes)
        self.label_smoothing = config.label_smoothing

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        per_head = (label_smoothed_ce(z.float(), pids, self.label_smoothing) for z in out.logits)
        return sum(per_head)  # type: ignore[return-value]


class TripletLoss(LossTerm):
    """Batch-hard triplet on each pooled feature, summed."""

    name, weight_key, keeps_graph = "triplet", "triplet_weight", True

    def __init__(self, config: LossConfig, **shapes: Any):
        super().__init__(config, **shapes)
        self.margin, self.metric = config.triplet_margin, config.triplet_metric

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        per_feature = (batch_hard_triplet(f.float(), pids, self.margin, self.metric) for f in out.triplet_features)
        return sum(per_feature)  # type: ignore[return-value]


class ImageToTextLoss(LossTerm):
    """Identity CE of the projected features with every identity's text feature as the classifier."""

    name, weight_key, needs_text = "i2t", "i2t_weight", True

    def __init__(self, config: LossConfig, **shapes: Any):
        super().__init__(config, **shapes)
        self.label_smoothing = config.label_smoothing

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        return image_to_text_ce(out.projected.float(), _text(text_table), pids, self.label_smoothing)


class SupConImageToText(LossTerm):
    """SupCon with the batch's image features as anchors and their identities' text features as contrasts."""

    name, weight_key, needs_text = "supcon_i2t", "supcon_i2t_weight", True

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        return supcon(out.projected.float(), _text(text_table)[pids], pids, pids)


class SupConTextToImage(LossTerm):
    """SupCon with the batch's text features as anchors and the image features as contrasts."""

    name, weight_key, needs_text = "supcon_t2i", "supcon_t2i_weight", True

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        return supcon(_text(text_table)[pids], out.projected.float(), pids, pids)


class CentreLoss(LossTerm):
    """Centre loss on the features the triplet term sees (the pooled penultimate, final and projected CLS, before
    the BNNeck), one learned table of identity centres for each, summed like the triplet term.

    Before the BNNeck because, as in the ReID "bag of tricks" (Luo et al. 2019), the metric losses (triplet,
    centre) act on the feature before batch norm and the classifier after it: the classifier separates identities
    by angle on the normalised feature, and a Euclidean pull towards centres there would work against it. The
    centres start at the origin: building them draws no random number, so switching the term on shifts no other
    random draw, and every process starts with the same centres. They are not weight-decayed (they are class
    statistics, not weights that overfit) and train at the stage-2 rate x `centre_lr_mult` (with Adam the step
    size does not depend on `centre_weight`).
    """

    name, weight_key = "centre", "centre_weight"

    def __init__(self, config: LossConfig, *, num_classes: int, feature_dims: Sequence[int]):
        super().__init__(config, num_classes=num_classes, feature_dims=feature_dims)
        if num_classes <= 0 or not feature_dims:
            raise ValueError("the centre loss needs the number of identities and the widths of the triplet features")
        self.lr_mult = config.centre_lr_mult
        self.centres = nn.ParameterList(nn.Parameter(torch.zeros(num_classes, dim)) for dim in feature_dims)

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None) -> Tensor:
        pairs = zip(out.triplet_features, self.centres, strict=True)
        return sum(centre_loss(f.float(), c, pids) for f, c in pairs)  # type: ignore[return-value]


TERMS: tuple[type[LossTerm], ...] = (
    IdentityLoss, TripletLoss, ImageToTextLoss, SupConImageToText, SupConTextToImage, CentreLoss
)
"""Every stage-2 term, in the order the criterion sums and logs them."""


def built_terms(config: LossConfig) -> list[type[LossTerm]]:
    """The terms a criterion of `config` evaluates: those of positive weight, and those that keep the graph."""
    return [term for term in TERMS if term.keeps_graph or getattr(config, term.weight_key) > 0]


def uses_text(config: LossConfig) -> bool:
    """Whether stage 2 of `config` needs the identity text features (a stage-1 result)."""
    return any(term.needs_text for term in built_terms(config))


class ReIDCriterion(nn.Module):
    """The stage-2 objective: the weighted sum of the terms `config` switches on.

    `num_classes` and `feature_dims` (the widths of the model's `triplet_features`) size terms with learned
    state (the centre loss); such state is part of the criterion's `state_dict` and optimiser groups.
    """

    def __init__(self, config: LossConfig, *, num_classes: int = 0, feature_dims: Sequence[int] = ()):
        super().__init__()
        shapes = {"num_classes": num_classes, "feature_dims": tuple(feature_dims)}
        self.terms = nn.ModuleDict({term.name: term(config, **shapes) for term in built_terms(config)})

    @property
    def uses_text(self) -> bool:
        return any(term.needs_text for term in self.terms.values())

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser groups of the terms' parameters, one a term (`loss.<name>`), without weight decay."""
        groups = []
        for term in self.terms.values():
            params = list(term.parameters())
            if params:
                groups.append({"name": f"loss.{term.name}", "params": params, "lr": lr * term.lr_mult,
                               "weight_decay": 0.0})
        return groups

    def forward(self, out: ReIDOutputLike, pids: Tensor, text_table: Tensor | None = None) -> dict[str, Tensor]:
        """Weighted terms by name and their sum under `loss`; text terms need the (num_classes, d_proj) text table."""
        if self.uses_text and text_table is None:
            raise ValueError("the image-text loss terms need the identity text features (run stage 1 first)")
        terms = {name: term.weight * term(out, pids, text_table) for name, term in self.terms.items()}
        terms["loss"] = sum(terms.values())  # type: ignore[assignment]
        return terms


def _text(text_table: Tensor | None) -> Tensor:
    assert text_table is not None  # the criterion checks before evaluating a text term
    return text_table.float()


def prompt_loss(image_features: Tensor, text_features: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """The stage-1 objective: image->text plus text->image SupCon between cached image and learned text features."""
    i2t = supcon(image_features, text_features, labels, labels)
    t2i = supcon(text_features, image_features, labels, labels)
    return {"supcon_i2t": i2t, "supcon_t2i": t2i, "loss": i2t + t2i}
