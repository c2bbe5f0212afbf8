"""Nearest-deadline-first eviction: the guide's ``"strategy": "ttl"``."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Final, TypeVar

from rgruntime.policies.base import LayerHooks

__all__ = ["TTLPolicy"]

K = TypeVar("K", bound=Hashable)

#: Rebuild the heap when it holds this many times more records than live keys (plus a margin).
_STALE_FACTOR: Final = 2
_STALE_MARGIN: Final = 64


class TTLPolicy(LayerHooks[K]):
    """When over a bound, evicts the entry that would expire soonest anyway.

    Entries are ordered by ``(deadline, placement)``; entries without a deadline (``inf``) come
    last, first written first out among themselves. A sliding TTL moves an entry's deadline on
    access (a new placement); an access that leaves the deadline unchanged keeps its place.

    A binary heap (``heapq``, in C) with lazy deletion: a moved or removed key leaves its old
    record in the heap, skipped when it reaches the top; the heap is rebuilt when stale records
    outnumber live ones. Sizes do not change the order (the actor evicts until the byte budget
    is met); the capacity options exist so that every strategy takes the same arguments.
    """

    __slots__ = ("_heap", "_placed", "_sequence")

    def __init__(self, max_size: int | None = None, max_entries: int | None = None) -> None:
        self._heap: list[tuple[float, int, K]] = []
        # key -> (deadline, placement number) of its live heap record.
        self._placed: dict[K, tuple[float, int]] = {}
        self._sequence = itertools.count()

    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:
        placed = self._placed.get(key)
        if placed is not None and placed[0] != expires_at:
            self._place(key, expires_at)

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        self._place(key, expires_at)

    def remove(self, key: K) -> None:
        self._placed.pop(key, None)  # its heap record goes stale

    def victim(self) -> K:
        heap, placed = self._heap, self._placed
        while heap:
            _, sequence, key = heap[0]
            record = placed.get(key)
            if record is not None and record[1] == sequence:
                return key
            heapq.heappop(heap)  # stale: moved or removed since it was pushed
        raise KeyError("victim(): the policy tracks no key")

    def __len__(self) -> int:
        return len(self._placed)

    def __contains__(self, key: object) -> bool:
        return key in self._placed

    def _place(self, key: K, expires_at: float) -> None:
        sequence = next(self._sequence)
        self._placed[key] = (expires_at, sequence)
        heapq.heappush(self._heap, (expires_at, sequence, key))
        if len(self._heap) > _STALE_FACTOR * len(self._placed) + _STALE_MARGIN:
            self._heap = [(deadline, seq, k) for k, (deadline, seq) in self._placed.items()]
            heapq.heapify(self._heap)
