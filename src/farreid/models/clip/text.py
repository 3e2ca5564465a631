"""The CLIP text tower with OpenAI's parameter names (the un-prefixed, non-`visual.` keys of a checkpoint)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from farreid.errors import FarreidError
from farreid.models.backbone import PromptTemplate
from farreid.models.clip.configs import TextSpec
from farreid.models.clip.layers import Transformer, init_transformer_


class TextTower(nn.Module):
    """Token + positional embedding -> causal blocks -> ln_final -> the EOT token's state @ text_projection.

    `forward_embeddings` takes ready token embeddings, so learnable prompt vectors can stand in for words.
    """

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        context_length: int = 77,
        vocab_size: int = 49408,
        mlp_width: int | None = None,
        activation: str = "quick_gelu",
    ):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads, mlp_width or 4 * width, activation)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width**-0.5)
        init_transformer_(self.transformer)

    @classmethod
    def from_spec(cls, spec: TextSpec, **kwargs) -> "TextTower":
        return cls(
            spec.width, spec.layers, spec.heads, spec.output_dim, spec.context_length, spec.vocab_size,
            spec.mlp_width, **kwargs,
        )

    @property
    def width(self) -> int:
        return self.transformer.width

    def prompt_template(self, n_learned: int) -> PromptTemplate:
        """"<start> X x n_learned . <end>" zero-padded, read at the end-of-text token (the largest id)."""
        from farreid.models.clip.tokenizer import ClipTokenizer

        tokenizer = ClipTokenizer.from_path()
        words = tokenizer.encode(" ".join(["X"] * n_learned) + ".")  # one token a placeholder, then "."
        ids = [tokenizer.sot_id, *words, tokenizer.eot_id]
        if len(words) != n_learned + 1 or len(ids) > self.context_length:
            raise FarreidError(
                f"a prompt of {n_learned} learned tokens does not fit the text context of {self.context_length} "
                "(model.text.n_ctx, model.text.n_id_tokens)"
            )
        return PromptTemplate(tuple(ids) + (0,) * (self.context_length - len(ids)), start=1, read_index=len(ids) - 1)

    def hidden_states(self, embeddings: Tensor) -> Tensor:
        """(N, L, width) token embeddings -> ln_final of the causal transformer's output (N, L, width)."""
        length = embeddings.shape[1]
        if length > self.context_length:
            raise ValueError(f"{length} tokens exceed the text tower's context length {self.context_length}")
        x = embeddings + self.positional_embedding[:length].to(embeddings.dtype)
        x, _ = self.transformer(x, causal=True)
        return self.ln_final(x)

    def forward_embeddings(self, embeddings: Tensor, read_index: Tensor) -> Tensor:
        """Projected features (N, output_dim) read at each sequence's end-of-text position `read_index` (N,)."""
        x = self.hidden_states(embeddings)
        pooled = x[torch.arange(x.shape[0], device=x.device), read_index]
        return pooled @ self.text_projection.to(pooled.dtype)

    def forward(self, token_ids: Tensor) -> Tensor:
        """(N, L) token ids with the end-of-text token as the largest id of each row -> (N, output_dim)."""
        return self.forward_embeddings(self.token_embedding(token_ids), token_ids.argmax(dim=-1))
