"""Identity text prompts "[ctx x n] [id x k] [ctx x n] ." learned through the frozen text tower (stage 1).

The shared context vectors and each identity's tokens are free embeddings that replace word embeddings
in the template; the start/end tokens and the full stop keep their (frozen) CLIP embeddings, read from the
text tower at call time so that they always match its current weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from farreid.models.clip.text import TextTower
from farreid.models.clip.tokenizer import ClipTokenizer


class TextPromptLearner(nn.Module):
    def __init__(self, num_classes: int, width: int, n_ctx: int = 8, n_id_tokens: int = 4, context_length: int = 77,
                 tokenizer: ClipTokenizer | None = None):
        super().__init__()
        tokenizer = tokenizer or ClipTokenizer.from_path()
        n_learned = 2 * n_ctx + n_id_tokens
        words = tokenizer.encode(" ".join(["X"] * n_learned) + ".")  # one token a placeholder, then "."
        ids = [tokenizer.sot_id, *words, tokenizer.eot_id]
        if len(words) != n_learned + 1 or len(ids) > context_length:
            raise ValueError(f"a prompt of {n_learned} learned tokens does not fit the text context of {context_length}")
        template = torch.zeros(1, context_length, dtype=torch.long, device="cpu")
        template[0, : len(ids)] = torch.tensor(ids, device="cpu")
        self.register_buffer("template", template, persistent=False)  # (1, context)
        self.n_learned = n_learned
        self.eot_index = len(ids) - 1
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
        embeddings = torch.cat([fixed[:, :1], learned.to(fixed.dtype), fixed[:, 1 + self.n_learned :]], dim=1)
        eot = torch.full((n,), self.eot_index, dtype=torch.long, device=labels.device)
        return text.forward_embeddings(embeddings, eot)
