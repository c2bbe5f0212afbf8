"""Exact least-recently-used eviction."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import TypeVar

from rgruntime.policies.base import LayerHooks

__all__ = ["LRUPolicy"]

K = TypeVar("K", bound=Hashable)


class LRUPolicy(LayerHooks[K]):
    """Evicts the key whose last access or write is the oldest.

    An ``OrderedDict`` keeps recency order: ``move_to_end`` on every access, the first key is the
    victim; both O(1). Sizes do not change the order, so the policy ignores them: the actor
    evicts victims until the layer is within its byte budget. The capacity options exist only so
    that every strategy takes the same arguments.
    """

    __slots__ = ("_order",)

    def __init__(self, max_size: int | None = None, max_entries: int | None = None) -> None:
        self._order: OrderedDict[K, None] = OrderedDict()

    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:
        if key in self._order:  # a trace may report hits on keys it never wrote
            self._order.move_to_end(key)

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        self._order[key] = None
        self._order.move_to_end(key)

    def remove(self, key: K) -> None:
        self._order.pop(key, None)

    def victim(self) -> K:
        for key in self._order:
            return key
        raise KeyError("victim(): the policy tracks no key")

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._order
