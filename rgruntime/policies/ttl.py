"""Nearest-deadline-first eviction: the guide's ``"strategy": "ttl"``."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from sortedcontainers import SortedList

__all__ = ["TTLPolicy"]

K = TypeVar("K", bound=Hashable)


class TTLPolicy(Generic[K]):
    """When over a bound, evicts the entry that would expire soonest anyway.

    Entries are ordered by ``(deadline, write order)``; entries without a deadline come last, in
    first-in first-out order among themselves. A sliding TTL moves an entry's deadline on access.
    """

    __slots__ = ("_by_deadline", "_position", "_sequence")

    def __init__(self) -> None:
        # (deadline, write sequence, key): the sequence is unique, so keys are never compared.
        self._by_deadline: SortedList[tuple[float, int, K]] = SortedList()
        self._position: dict[K, tuple[float, int, K]] = {}
        self._sequence = itertools.count()

    def record_access(self, key: K, expires_at: float) -> None:
        position = self._position.get(key)
        if position is not None and position[0] != expires_at:
            self._place(key, expires_at)

    def record_write(self, key: K, size: int, expires_at: float) -> None:
        self._place(key, expires_at)

    def remove(self, key: K) -> None:
        position = self._position.pop(key, None)
        if position is not None:
            self._by_deadline.remove(position)

    def victim(self) -> K:
        if not self._by_deadline:
            raise KeyError("victim(): the policy tracks no key")
        return self._by_deadline[0][2]

    def __len__(self) -> int:
        return len(self._position)

    def _place(self, key: K, expires_at: float) -> None:
        self.remove(key)
        position = (expires_at, next(self._sequence), key)
        self._position[key] = position
        self._by_deadline.add(position)
