"""SigLIP's tokenizer: SentencePiece on canonical text (lower case, punctuation dropped, whitespace collapsed),
one end-of-sequence token, padded to the full context (the text tower reads the last position)."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from farreid.errors import FarreidError

PUNCTUATION = str.maketrans("", "", string.punctuation)


class SiglipTokenizer:
    def __init__(self, model_file: str | Path, eos_piece: str = "</s>"):
        import sentencepiece

        try:
            self.processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        except (OSError, RuntimeError) as exc:
            raise FarreidError(f"cannot read the SentencePiece model {model_file}: {exc}") from None
        self.eos_id = self.processor.piece_to_id(eos_piece)
        self.pad_id = self.eos_id  # SigLIP pads with the end-of-sequence token
        self.vocab_size = self.processor.get_piece_size()

    @staticmethod
    def canonical(text: str) -> str:
        text = text.replace("\u2581", " ").lower().translate(PUNCTUATION)
        return re.sub(r"\s+", " ", text).strip()

    def encode(self, text: str) -> list[int]:
        """Word-piece ids of one text, without the end-of-sequence token."""
        return self.processor.encode(self.canonical(text))

    def __call__(self, texts: Sequence[str], context_length: int = 64) -> Tensor:
        """(N, context_length) ids: each text cut to context_length - 1 pieces, then end-of-sequence, then pad."""
        out = torch.full((len(texts), context_length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text)[: context_length - 1] + [self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out
