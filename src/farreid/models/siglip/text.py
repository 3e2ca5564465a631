"""The SigLIP text tower: token + position embedding -> bidirectional pre-LN blocks -> final LN -> the last
position's state through a linear head. Texts are padded to the full context, so "last" is a fixed position."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from farreid.errors import FarreidError
from farreid.models.backbone import PromptTemplate
from farreid.models.clip.layers import Transformer, init_transformer_
from farreid.models.siglip.configs import ACTIVATION, LAYER_NORM_EPS, SiglipTextSpec


class SiglipTextTower(nn.Module):
    def __init__(self, spec: SiglipTextSpec):
        super().__init__()
        self.spec = spec
        self.context_length = spec.context_length
        self.token_embedding = nn.Embedding(spec.vocab_size, spec.width)
        self.positional_embedding = nn.Parameter(torch.empty(spec.context_length, spec.width))
        self.transformer = Transformer(spec.width, spec.layers, spec.heads, spec.mlp_width, ACTIVATION, LAYER_NORM_EPS)
        self.ln_final = nn.LayerNorm(spec.width, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(spec.width, spec.output_dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        init_transformer_(self.transformer)

    @property
    def width(self) -> int:
        return self.transformer.width

    def prompt_template(self, n_learned: int) -> PromptTemplate:
        """The learned tokens, then end-of-sequence, padded to the context; read at the last position.

        This is what `SiglipTokenizer` makes of "X X ... X." padded to the context length: it drops punctuation,
        so the paper's full stop has no token here.
        """
        if n_learned + 1 > self.context_length:
            raise FarreidError(
                f"a prompt of {n_learned} learned tokens does not fit the text context of {self.context_length} "
                "(model.text.n_ctx, model.text.n_id_tokens)"
            )
        pad, eos = self.spec.pad_id, self.spec.eos_id
        ids = (pad,) * n_learned + (eos,) + (pad,) * (self.context_length - n_learned - 1)
        return PromptTemplate(ids, start=0, read_index=self.context_length - 1)

    def forward_embeddings(self, embeddings: Tensor, read_index: Tensor) -> Tensor:
        """(N, L, width) token embeddings -> (N, output_dim) text features read at `read_index` (N,)."""
        length = embeddings.shape[1]
        if length > self.context_length:
            raise ValueError(f"{length} tokens exceed the text tower's context length {self.context_length}")
        x = embeddings + self.positional_embedding[:length].to(embeddings.dtype)
        x, _ = self.transformer(x)
        x = self.ln_final(x)
        return self.head(x[torch.arange(x.shape[0], device=x.device), read_index])

    def forward(self, token_ids: Tensor) -> Tensor:
        """(N, L) token ids (padded as the tokenizer pads them) -> (N, output_dim), read at position L - 1."""
        read = torch.full((token_ids.shape[0],), token_ids.shape[1] - 1, dtype=torch.long, device=token_ids.device)
        return self.forward_embeddings(self.token_embedding(token_ids), read)
