"""One cached value and what the layer knows about it."""

from __future__ import annotations

import itertools
import math
from typing import Any, Final

__all__ = ["NEVER", "Entry", "next_sequence"]

#: The deadline of an entry that does not expire on its own.
NEVER: Final = math.inf

_sequence = itertools.count()

#: The next creation number (entries take theirs from the same counter).
next_sequence = _sequence.__next__


class Entry:
    """A cached value. Readers see ``value`` and ``expires_at``; the rest is the actor's.

    ``cost`` is what recomputing the value would cost (seconds by default; the ``cost`` strategy
    weighs it per byte). ``fresh_hits`` counts the hits on this entry since the eviction policy
    last heard of it (readers increment it; the first of them also logs the entry), ``hits`` the
    hits the policy has been told about; their sum is every hit. ``timer``
    is the entry's position in the layer's timer index while it has one; ``sequence`` orders
    entries by creation and breaks ties between equal deadlines.
    """

    __slots__ = (
        "cost",
        "expires_at",
        "fresh_hits",
        "hits",
        "key",
        "sequence",
        "size",
        "tags",
        "timer",
        "ttl",
        "value",
    )

    def __init__(
        self,
        key: str,
        value: Any,
        expires_at: float,
        ttl: float | None,
        size: int,
        tags: frozenset[str],
        cost: float = 1.0,
    ) -> None:
        self.key = key
        self.value = value
        self.expires_at = expires_at
        self.ttl = ttl
        self.size = size
        self.tags = tags
        self.cost = cost
        self.hits = 0
        self.fresh_hits = 0
        self.sequence = next_sequence()
        self.timer: tuple[float, int, str] | None = None

    def __repr__(self) -> str:
        return f"<Entry {self.key!r} size={self.size} expires_at={self.expires_at:g}>"
