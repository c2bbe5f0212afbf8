"""``"hashing"``: a zero-dependency embedder for tests (never the default).

It hashes words and character trigrams into a fixed number of signed buckets (the "hashing trick"),
so texts that share words get close vectors. It knows nothing of meaning: it scores "weather in
Paris" and "weather in London" above a true paraphrase pair, which is why a semantic cache must
never run on it in production. It is deterministic across processes (keyed BLAKE2, not the salted
``hash()``), needs no model and costs tens of microseconds per text, so it runs inline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.embedder import Vectors, check_texts, normalize_rows

__all__ = ["HashingEmbedder"]

_WORD: Final = re.compile(r"\w+")


def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % dimension, (1.0 if digest >> 63 else -1.0)


class HashingEmbedder:
    """Words (weight 1) and character trigrams (weight 0.5) hashed into ``dimension`` buckets."""

    def __init__(self, *, dimension: int = 256) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 8:
            raise InvalidArgumentError("dimension", dimension, "a whole number of at least 8")
        self.dimension = dimension
        self.name = f"hashing-{dimension}"

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimension={self.dimension})"

    def encode(self, texts: Sequence[str]) -> Vectors:
        checked = check_texts(texts)
        out = np.zeros((len(checked), self.dimension), dtype=np.float32)
        for row, text in enumerate(checked):
            for word in _WORD.findall(text.lower()):
                index, sign = _bucket("w:" + word, self.dimension)
                out[row, index] += sign
                padded = f"#{word}#"
                for start in range(len(padded) - 2):
                    index, sign = _bucket("c:" + padded[start : start + 3], self.dimension)
                    out[row, index] += 0.5 * sign
        return normalize_rows(out)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return self.encode(texts)


def make_hashing(**options: Any) -> HashingEmbedder:
    return HashingEmbedder(**options)
