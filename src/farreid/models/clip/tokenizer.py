"""CLIP's byte-level BPE tokenizer, reproducing OpenAI / open_clip token ids.

Vocabulary: `bpe_simple_vocab_16e6.txt.gz` (OpenAI's CLIP merges, MIT licence, shipped with this package;
see BPE_VOCAB_LICENSE.txt) or a Hugging Face `vocab.json` + `merges.txt` pair.
Text cleaning: OpenAI runs `ftfy.fix_text` (mojibake repair + NFC), unescapes HTML twice, collapses
whitespace and lower-cases. farreid does the same except mojibake repair (NFC normalisation only), so
ids match for well-formed text without pulling in ftfy. The split pattern needs Unicode letter/number
classes, hence the pinned `regex` package.
"""

from __future__ import annotations

import gzip
import html
import json
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import regex
import torch

from farreid.errors import FarreidError

DEFAULT_VOCAB = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
_NUM_MERGES = 49152 - 256 - 2  # merges OpenAI's vocabulary uses from the file
_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Every byte -> a printable character, so BPE runs on strings without whitespace/control bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def clean_text(text: str) -> str:
    text = html.unescape(html.unescape(unicodedata.normalize("NFC", text)))
    return regex.sub(r"\s+", " ", text).strip().lower()


class ClipTokenizer:
    """`tokenizer(texts, context_length=77)` -> (N, context_length) int64 ids with SOT ... EOT, zero-padded."""

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, str]]):
        self.encoder = encoder
        self.decoder = {i: t for t, i in encoder.items()}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        missing = [t for t in (SOT, EOT) if t not in encoder]
        if missing:
            raise FarreidError(f"tokenizer vocabulary lacks the special tokens {missing}")
        self.sot_id, self.eot_id = encoder[SOT], encoder[EOT]
        self._cache: dict[str, str] = {SOT: SOT, EOT: EOT}

    @classmethod
    def from_bpe_file(cls, path: str | Path = DEFAULT_VOCAB) -> "ClipTokenizer":
        """OpenAI's gzipped merges file: the vocabulary is derived from it exactly as OpenAI does."""
        try:
            lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise FarreidError(f"cannot read BPE vocabulary {path}: {exc}") from None
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
        if len(merges) != _NUM_MERGES or any(len(m) != 2 for m in merges):
            raise FarreidError(f"{path} is not a CLIP BPE merges file ({len(merges)} merges of {_NUM_MERGES} read)")
        base = list(bytes_to_unicode().values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [SOT, EOT]
        return cls({tok: i for i, tok in enumerate(vocab)}, merges)  # type: ignore[arg-type]

    @classmethod
    def from_hf_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> "ClipTokenizer":
        """A Hugging Face tokenizer's `vocab.json` and `merges.txt` (the `#version` header is skipped)."""
        try:
            encoder = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
            lines = Path(merges_txt).read_text(encoding="utf-8").split("\n")
        except (OSError, ValueError) as exc:
            raise FarreidError(f"cannot read tokenizer files {vocab_json}, {merges_txt}: {exc}") from None
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        if any(len(m) != 2 for m in merges):
            raise FarreidError(f"{merges_txt} is not a BPE merges file (every line must hold two symbols)")
        return cls(encoder, merges)  # type: ignore[arg-type]

    @classmethod
    def from_path(cls, path: str | Path | None = None) -> "ClipTokenizer":
        """The shipped vocabulary (None), a `.gz` merges file, or a directory with vocab.json + merges.txt."""
        if path is None:
            return cls.from_bpe_file()
        path = Path(path)
        if path.is_dir() and (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return cls.from_hf_files(path / "vocab.json", path / "merges.txt")
        if path.is_file():
            return cls.from_bpe_file(path)
        raise FarreidError(f"no tokenizer vocabulary at {path} (expected a .txt.gz merges file or vocab.json + merges.txt)")

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        result = " ".join(word)
        self._cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without SOT/EOT."""
        ids = []
        for piece in _PATTERN.findall(clean_text(text)):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(piece).split(" "))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        text = "".join(self.decoder[int(i)] for i in ids)
        raw = bytearray(self.byte_decoder[c] for c in text if c in self.byte_decoder)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ").strip()

    def __call__(self, texts: str | list[str], context_length: int = 77) -> torch.Tensor:
        """SOT + ids + EOT per text, truncated to `context_length` with EOT kept last, zero-padded."""
        texts = [texts] if isinstance(texts, str) else texts
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = torch.tensor(ids)
        return out
