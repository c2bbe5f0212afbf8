"""``diagnose()``: the likely causes of a low hit rate, ranked, each with its evidence (pure).

Three causes are looked for, each measured as the share of recent misses it explains:

- ``key_variance``: misses on a text (a goal, a key) whose template, with timestamps, ids,
  UUIDs and whitespace masked, was asked for recently under another text
  (:mod:`rgruntime.observe.variance`). Fix: keep volatile parts out of the key;
- ``short_ttl``: misses on keys that had expired less than one TTL before the request. Fix: a
  longer TTL (the recommended one covers what those entries would have needed);
- ``small_cache``: misses on keys evicted recently. Fix: a larger ``max_size`` (from the
  miss-ratio curve).

``issue`` is the cause that explains the most misses, if it explains at least
:data:`MIN_SHARE` percent of them; ``causes`` lists every cause found, largest share first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = ["MIN_SHARE", "Cause", "Diagnosis", "Issue", "diagnosis_of"]

#: The least share of misses (percent) a cause must explain to be reported.
MIN_SHARE: Final = 5.0

Issue: TypeAlias = Literal["key_variance", "short_ttl", "small_cache"]


@attrs.frozen(kw_only=True)
class Cause:
    """One cause of misses: its share of the misses looked at, its evidence, the fix."""

    issue: Issue
    misses: int  # misses it explains
    looked_at: int  # misses looked at
    recommendation: str
    evidence: dict[str, Any] = attrs.field(factory=dict)

    @property
    def share(self) -> float:
        """Percent of the misses looked at that this cause explains."""
        return 100.0 * self.misses / self.looked_at if self.looked_at else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "share": self.share}


@attrs.frozen(kw_only=True)
class Diagnosis:
    """``client.cache.diagnose()``: ``issue`` is the likeliest cause (None: none found),
    ``causes`` every cause found, ranked."""

    issue: Issue | None
    causes: tuple[Cause, ...]
    hit_rate: float  # percent, of what was diagnosed
    misses: int  # misses looked at
    scope: dict[str, str | None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "issue": self.issue,
            "causes": [cause.as_dict() for cause in self.causes],
            "hit_rate": self.hit_rate,
            "misses": self.misses,
            "scope": dict(self.scope),
        }


def variance_cause(
    seen: int, varied: int, parts: Counter[str], examples: Sequence[tuple[str, str]]
) -> Cause | None:
    if not seen or not varied:
        return None
    named = ", ".join(part for part, _ in parts.most_common())
    return Cause(
        issue="key_variance",
        misses=varied,
        looked_at=seen,
        recommendation=(
            f"requests differ only in volatile parts ({named}): keep them out of the cache key "
            "(normalise the text, or pass them outside the goal / key parameters)"
        ),
        evidence={
            "parts": dict(parts.most_common()),
            "examples": [list(pair) for pair in examples],
        },
    )


def diagnosis_of(
    causes: Sequence[Cause | None], *, hit_rate: float, misses: int, scope: dict[str, str | None]
) -> Diagnosis:
    """Rank ``causes`` and name the issue."""
    found = sorted(
        (cause for cause in causes if cause is not None and cause.share >= MIN_SHARE),
        key=lambda cause: cause.share,
        reverse=True,
    )
    return Diagnosis(
        issue=found[0].issue if found else None,
        causes=tuple(found),
        hit_rate=hit_rate,
        misses=misses,
        scope=scope,
    )
