"""BNNeck heads: BatchNorm (bias frozen) then a bias-free identity classifier, as in strong ReID baselines."""

from __future__ import annotations

from torch import Tensor, nn


class BNNeckClassifier(nn.Module):
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feature: Tensor) -> Tensor:
        """(B, dim) pre-BN feature -> (B, num_classes) logits."""
        return self.classifier(self.bn(feature))
