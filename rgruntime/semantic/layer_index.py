"""A cache layer's semantic index: find an entry of the layer by the meaning of a text.

:class:`SemanticCache` maps texts to keys; the layer keeps the values. :class:`LayerSemanticIndex`
binds the two so that they cannot disagree:

- a **lookup** asks the semantic cache for the best verified key, then reads that key through the
  layer's normal read path, which checks the entry's deadline: an entry past its TTL that the
  layer's actor has not swept yet reads as a miss, and a key the layer no longer holds is taken
  out of the semantic cache on the spot;
- **removals** flow one way, from the layer: the index registers a removal listener
  (:mod:`rgruntime.runtime.removals`), so that whenever a key leaves the layer (evicted, expired,
  invalidated by key, pattern or tag, cleared, deleted) its vector leaves the semantic cache in
  the same synchronous step. No orphan vector stays behind, and no lookup can return a removed
  entry;
- an **add** happens after the layer stored the entry; if the entry left the layer while its text
  was being embedded, the add is undone.

One index serves every partition of a layer: the partition (everything that selects an answer
except the text: tenant, agent, model, temperature, tools, system prompt...) is chosen before any
vector search, so entries of another partition are never candidates.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import attrs

from rgruntime._missing import MISSING
from rgruntime.semantic.cache import SemanticCache
from rgruntime.semantic.errors import EmbeddingFailedError
from rgruntime.semantic.judged_policies import JudgedPolicies
from rgruntime.semantic.judges import ANSWER_JUDGE, JudgeIdentity, answer_text, normalized
from rgruntime.semantic.records import SemanticMatch, SemanticStats

if TYPE_CHECKING:
    from rgruntime.runtime.layer import Layer
    from rgruntime.runtime.removals import RemovalReason
    from rgruntime.semantic.error_bound import ErrorBoundPolicy

__all__ = ["LayerSemanticIndex", "SemanticHit"]

logger = logging.getLogger("rgruntime.semantic")

#: An embedder's failures are logged at the first and every this many after.
_LOG_EVERY: Final = 100


@attrs.frozen
class SemanticHit:
    """A semantic hit on a layer: the entry's key and value, and how similar its text was."""

    key: str
    value: Any
    similarity: float
    text: str
    #: The similarity of the most similar other entry of the partition whose answer differs
    #: (None: the search found none). Close to ``similarity``: ambiguous.
    runner_up: float | None = None
    #: The verifier found the two texts the same question by rule (see SemanticMatch).
    equivalent: bool = False


class LayerSemanticIndex:
    """Lookups by meaning over one layer's entries (obtain it from ``runtime.semantic_index``)."""

    def __init__(self, layer: Layer, cache: SemanticCache) -> None:
        self.layer = layer
        self.cache = cache
        # One policy per error bound and judge asked for: the evidence is about this index's
        # embedder and verifier as one judge sees them (never pooled across judges: a lenient
        # one would open serving for every agent), the bound only about what to do with it.
        self._policies = JudgedPolicies()
        # For the layer's lifetime: the index and the layer live and stop with one runtime.
        layer.add_removal_listener(self._removed)

    def __repr__(self) -> str:
        return f"<LayerSemanticIndex layer={self.layer.name!r} {self.cache!r}>"

    @property
    def embedder_name(self) -> str:
        return self.cache.embedder.name

    def _removed(self, layer: str, key: str, reason: RemovalReason) -> None:
        # A replaced value keeps its key, and the key derives from the text: the vector stays.
        if reason != "replaced":
            self.cache.remove(key)
            self._policies.forget(key)

    def error_bound(
        self, max_error_rate: float, judge: JudgeIdentity = ANSWER_JUDGE
    ) -> ErrorBoundPolicy:
        """The serve / verify policy of this index for ``max_error_rate`` as taught by
        ``judge`` (made on first use; see :mod:`rgruntime.semantic.judged_policies`)."""
        return self._policies.get(max_error_rate, judge)

    async def lookup(
        self, partition: str, text: str, *, threshold: float | None = None, verify: bool = True
    ) -> SemanticHit | None:
        """The live entry of ``partition`` whose text best matches ``text``, or None.

        ``threshold``: cosine similarity in [0, 1] (default: the index's). The entry is read
        through the layer (its hit is counted there), so an expired entry is never returned.
        """
        try:
            match = await self.cache.lookup(partition, text, threshold, verify=verify)
        except EmbeddingFailedError as error:
            self._embedding_failed("a lookup by meaning is a miss", error)
            return None
        if match is None:
            return None
        value = self.layer.get_nowait(match.key, MISSING)
        if value is MISSING:
            # Expired, not yet swept by the layer's actor: the sweep will remove it anyway.
            return None
        return SemanticHit(
            match.key,
            value,
            match.similarity,
            match.text,
            self._differing(match, value),
            match.equivalent,
        )

    def _differing(self, match: SemanticMatch, value: Any) -> float | None:
        """The similarity of the most similar other entry that holds another answer: two
        entries with one answer (a question and its paraphrase, both cached) are no ambiguity,
        and one that left the layer (or expired) would not be served either."""
        answer = normalized(answer_text(value))
        for key, similarity in match.others:
            other = self.layer.peek(key, MISSING)
            if other is not MISSING and normalized(answer_text(other)) != answer:
                return similarity
        return None

    async def add(self, partition: str, key: str, text: str) -> None:
        """Index ``text`` for the layer's entry ``key`` (store the entry first)."""
        try:
            await self.cache.add(partition, key, text)
        except EmbeddingFailedError as error:
            self._embedding_failed("an entry is left unindexed (exact hits still find it)", error)
            return
        if key not in self.layer:
            # The entry left the layer before or while its text was embedded: the listener has
            # nothing to remove yet at that moment, so the vector goes now.
            self.cache.remove(key)

    def _embedding_failed(self, consequence: str, error: EmbeddingFailedError) -> None:
        # Logged at the first failure and every 100th after: an embedding server that is down
        # fails every request's lookup, and one line each would bury the log.
        failures = self.cache.embedding_failures
        if failures % _LOG_EVERY == 1:
            logger.warning(
                "layer %r: %s; %s (failures so far: %d; see stats().embedding_failures)",
                self.layer.name,
                error,
                consequence,
                failures,
            )

    def stats(self) -> SemanticStats:
        return attrs.evolve(
            self.cache.stats(),
            error_bound=self._policies.stats(),
            judge_policies_dropped=self._policies.dropped,
        )
