"""Immutable records of the semantic cache: a match, the similarity histogram, the statistics.

The one similarity convention of the package: **cosine similarity in [0, 1]** (1: same direction;
negative cosines, which sentence embeddings almost never produce for texts of one language, are
reported as 0). Thresholds, matches, histograms and the hnswlib index (whose cosine *distance* is
``1 - similarity``) are all converted to it at their boundary, nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from rgruntime.semantic.error_bound import ErrorBoundStats
from rgruntime.semantic.verify import RejectionReason

__all__ = ["HISTOGRAM_BINS", "SemanticMatch", "SemanticStats", "SimilarityHistogram"]

#: The histogram's bins split [0, 1] into this many equal parts (0.01 wide).
HISTOGRAM_BINS: Final = 100


@attrs.frozen
class SemanticMatch:
    """A semantic hit: the cache key whose text matched, how similar it is, and that text."""

    key: str
    similarity: float
    text: str
    partition: str
    #: The other live entries of the partition the search found (verified or not, above the
    #: lookup's threshold or not), most similar first: key and similarity. Another cached text
    #: about as close to the query, with another answer, makes the match ambiguous (the error
    #: bound verifies it).
    others: tuple[tuple[str, float], ...] = ()
    #: The verifier found the two texts the same question by rule (an implicit-default
    #: qualifier is all they differ in): :attr:`rgruntime.semantic.verify.Verdict.equivalent`.
    equivalent: bool = False

    @property
    def runner_up(self) -> tuple[str, float] | None:
        """The most similar of :attr:`others` (None: the search found no other entry)."""
        return self.others[0] if self.others else None


@attrs.frozen(repr=False)
class SimilarityHistogram:
    """Counts of hit similarities in :data:`HISTOGRAM_BINS` bins of width 0.01 over [0, 1].

    ``counts[i]`` counts similarities in ``[i / 100, (i + 1) / 100)``; 1.0 falls in the last bin.
    """

    counts: tuple[int, ...] = (0,) * HISTOGRAM_BINS

    def __repr__(self) -> str:
        return f"SimilarityHistogram({self.nonzero()})"

    @staticmethod
    def bin_of(similarity: float) -> int:
        return min(int(similarity * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def nonzero(self) -> dict[str, int]:
        """The bins that counted something, labelled by their lower edge (``"0.93": 12``)."""
        return {f"{i / HISTOGRAM_BINS:.2f}": n for i, n in enumerate(self.counts) if n}

    def quantile(self, q: float) -> float | None:
        """The lower edge of the bin holding the ``q`` quantile (None when empty)."""
        total = self.total
        if not total:
            return None
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= q * total:
                return i / HISTOGRAM_BINS
        return 1.0


@attrs.frozen(kw_only=True)
class SemanticStats:
    """What a :class:`~rgruntime.semantic.SemanticCache` did since it was made.

    A lookup ends in exactly one of: ``hits``, ``empty`` (nothing indexed in its partition),
    ``below_threshold`` (the nearest live entry was not similar enough), ``rejected`` (every
    candidate above the threshold failed verification). ``rejections`` counts rejected candidates
    by reason (a lookup may reject several before it hits or gives up).
    """

    lookups: int = 0
    hits: int = 0
    empty: int = 0
    below_threshold: int = 0
    rejected: int = 0
    rejections: Mapping[RejectionReason, int] = attrs.field(factory=dict)
    hit_similarities: SimilarityHistogram = SimilarityHistogram()
    adds: int = 0
    removals: int = 0
    entries: int = 0
    partitions: int = 0
    pending_removals: int = 0
    embedded_texts: int = 0
    embedding_cache_entries: int = 0
    #: Texts the embedder failed to embed (a lookup, or an add): on a layer's semantic index,
    #: each was a miss, or an entry left unindexed, never a failed request.
    embedding_failures: int = 0
    #: Under ``max_error_rate``: each policy's decisions and estimates (served by meaning,
    #: verified, judged wrong, estimated error rate and its interval, exploration rate). A policy
    #: learns from one judge's verdicts (evidence is never pooled across judges), and is keyed by
    #: its bound for the default answer judge (``"0.02"``), else by the bound and the judge:
    #: ``"0.02 judge=model:gpt-4o"`` (``judge="model"``, per model), ``"0.02 judge=<the callable's
    #: __qualname__>"`` (a custom judge; ``" #2"``... when kept judges share a name). Empty for an
    #: index used with static thresholds only.
    error_bound: Mapping[str, ErrorBoundStats] = attrs.field(factory=dict)
    #: Policies of judges other than the default one dropped, least recently used first, to keep
    #: at most :data:`~rgruntime.semantic.judged_policies.MAX_JUDGE_POLICIES` per index: their
    #: agents start over on probation. Rising: judges are being made per agent or per call.
    judge_policies_dropped: int = 0

    @property
    def misses(self) -> int:
        return self.lookups - self.hits

    @property
    def hit_rate(self) -> float:
        """Hits as a percentage of lookups (0.0 when there was none)."""
        return 100.0 * self.hits / self.lookups if self.lookups else 0.0

    def as_dict(self) -> dict[str, Any]:
        record = attrs.asdict(self, recurse=False)
        record["rejections"] = dict(self.rejections)
        record["hit_similarities"] = self.hit_similarities.nonzero()
        record["error_bound"] = {
            bound: stats.as_dict() for bound, stats in self.error_bound.items()
        }
        record.update(misses=self.misses, hit_rate=self.hit_rate)
        return record
