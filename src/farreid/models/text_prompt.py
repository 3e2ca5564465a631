"""Identity text prompts "[ctx x n] [id x k] [ctx x n] ." learned through the frozen text tower (stage 1).

The shared context vectors and each identity's tokens are free embeddings that replace word embeddings
in the template the text tower's family makes (`PromptTemplate`); the other tokens (start / end of text,
the full stop, padding) keep their frozen embeddings, read from the text tower at call time so that they always
match its current weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from farreid.models.backbone import PromptTemplate, TextTower


class TextPromptLearner(nn.Module):
    def __init__(self, num_classes: int, width: int, template: PromptTemplate, n_ctx: int = 8, n_id_tokens: int = 4):
        super().__init__()
        self.register_buffer("template", torch.tensor([template.ids], dtype=torch.long, device="cpu"), persistent=False)
        self.start = template.start
        self.n_learned = 2 * n_ctx + n_id_tokens
        self.read_index = template.read_index
        self.prefix_ctx = nn.Parameter(torch.empty(n_ctx, width))
        self.suffix_ctx = nn.Parameter(torch.empty(n_ctx, width))
        self.id_tokens = nn.Parameter(torch.empty(num_classes, n_id_tokens, width))
        for p in (self.prefix_ctx, self.suffix_ctx, self.id_tokens):
            nn.init.normal_(p, std=0.02)

    def forward(self, labels: Tensor, text: TextTower) -> Tensor:
        """(n,) identity labels -> (n, d_proj) text features through `text` (frozen; gradients reach the prompts)."""
        n = labels.shape[0]
        with torch.no_grad():
            fixed = text.token_embedding(self.template).expand(n, -1, -1)  # (n, ctx, width)
        learned = torch.cat(
            [self.prefix_ctx.expand(n, -1, -1), self.id_tokens[labels], self.suffix_ctx.expand(n, -1, -1)], dim=1
        )
        end = self.start + self.n_learned
        embeddings = torch.cat([fixed[:, : self.start], learned.to(fixed.dtype), fixed[:, end:]], dim=1)
        read = torch.full((n,), self.read_index, dtype=torch.long, device=labels.device)
        return text.forward_embeddings(embeddings, read)
