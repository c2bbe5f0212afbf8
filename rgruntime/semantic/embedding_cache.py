"""An embedding cache: the same text under the same model is embedded once.

A semantic cache embeds every lookup, and on a miss the caller usually adds the same text right
after: without this cache the model would run twice for it. Identical texts in one batch, and
texts that another caller is embedding at this moment, are not sent to the model again either.

Vectors are kept per embedder (whose ``name`` identifies the model), in least-recently-used order,
up to ``max_entries`` (384 float32 take 1.5 KiB: 10,000 entries hold about 15 MiB).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import anyio
import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.embedder import Embedder, Vectors, check_texts

__all__ = ["CachedEmbedder"]


class CachedEmbedder:
    """Wraps an :class:`~rgruntime.semantic.Embedder` with an embedding cache (see the module)."""

    def __init__(self, inner: Embedder, *, max_entries: int = 10_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 0:
            raise InvalidArgumentError("max_entries", max_entries, "a whole number >= 0")
        self.inner = inner
        self.max_entries = max_entries
        self._vectors: OrderedDict[str, Vectors] = OrderedDict()
        # Texts being embedded by some caller now, with the event set when that call ends.
        self._in_flight: dict[str, anyio.Event] = {}
        #: Texts sent to the model (each distinct text of a batch once).
        self.embedded = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __len__(self) -> int:
        return len(self._vectors)

    def cached(self, text: str) -> Vectors | None:
        """The cached vector of ``text`` (a 1-D row), or None; never embeds."""
        vector = self._vectors.get(text)
        if vector is not None:
            self._vectors.move_to_end(text)
        return vector

    async def embed(self, texts: Sequence[str]) -> Vectors:
        checked = check_texts(texts)
        if not checked:
            return np.empty((0, self.dimension), dtype=np.float32)
        found: dict[str, Vectors] = {}
        while True:
            waiting: list[anyio.Event] = []
            mine: list[str] = []
            for text in dict.fromkeys(checked):
                if text in found:
                    continue
                vector = self.cached(text)
                if vector is not None:
                    found[text] = vector
                elif text in self._in_flight:
                    waiting.append(self._in_flight[text])
                else:
                    mine.append(text)
            if mine:
                found.update(await self._embed_new(mine))
            if not waiting:
                break
            # Another caller is embedding these: wait for it, then take its result from the
            # cache (or embed them ourselves, if that call failed or the cache is off).
            for event in waiting:
                await event.wait()
        return np.stack([found[text] for text in checked])

    async def _embed_new(self, texts: list[str]) -> dict[str, Vectors]:
        done = anyio.Event()
        for text in texts:
            self._in_flight[text] = done
        try:
            vectors = await self.inner.embed(texts)
        finally:
            for text in texts:
                del self._in_flight[text]
            done.set()
        self.embedded += len(texts)
        result = dict(zip(texts, vectors, strict=True))
        if self.max_entries:
            for text, vector in result.items():
                self._vectors[text] = vector
            while len(self._vectors) > self.max_entries:
                self._vectors.popitem(last=False)
        return result
