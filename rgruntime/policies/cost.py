"""The ``cost`` strategy: GreedyDual-Size-Frequency (Cherkasova, 1998), for entries with a cost.

An agent's caches hold entries of very different worth: a model answer that took 30 s and
$0.05 to produce, next to tool results that take 10 ms to redo. Recency and frequency alone would
evict the model answer to keep ten cheap tool results that were touched later. GDSF gives every
entry a priority

    priority = clock + frequency x cost / size

and evicts the lowest. ``cost`` is what a miss would cost (tokens, money, seconds: any unit, as
long as a layer uses one), ``size`` its weight (bytes with ``max_size``, otherwise 1: the value
per unit of the budget), ``frequency`` its uses since it was written. ``clock`` starts at 0 and
becomes the priority of each evicted entry: entries that stop being used are overtaken by newer
ones as the clock rises, so a once-expensive entry does not stay forever (the "aging" of
GreedyDual).

One departure from the textbook: the entry written last is never the victim while another entry
is there. A new entry starts with the lowest priority there is (``clock`` + one use), so plain
GDSF would evict it before it can be read even once, and a cache of a single entry would never
let a newcomer in; sparing the newest gives every entry the chance to earn its first hit (the
same reason W-TinyLFU puts new entries in a window).

A binary heap (``heapq``, in C) with lazy updates: a hit only raises the entry's priority on its
record; the heap is corrected when a record whose priority has risen reaches the top (it is
pushed back with its current priority). Priorities only ever rise between writes, so the top
record, once checked, is the true minimum; a hit costs O(1), and the heap holds one record per
key plus the stale ones left by overwrites and removals (rebuilt when those outnumber the live).
"""

from __future__ import annotations

from collections.abc import Hashable
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any, Final, TypeVar

from rgruntime.policies.base import LayerHooks

__all__ = ["CostAwarePolicy"]

K = TypeVar("K", bound=Hashable)

#: A cost is clamped to at least this (a zero cost would make an entry worthless forever).
MIN_COST: Final = 1e-9
_STALE_FACTOR: Final = 2
_STALE_MARGIN: Final = 64

# A node is a small list: the fields.
_PRIORITY: Final = 0
_FREQUENCY: Final = 1
_COST: Final = 2
_WEIGHT: Final = 3
_RECORD: Final = 4  # the order number of its live heap record (others are stale)
_ORDER: Final = 5  # when it was last written or hit: breaks ties, oldest first


class CostAwarePolicy(LayerHooks[K]):
    """GreedyDual-Size-Frequency: evicts the entry with the least cost x frequency per byte."""

    __slots__ = (
        "_clock",
        "_heap",
        "_heap_limit",
        "_last_order",
        "_named",
        "_newest",
        "_nodes",
        "_weighted",
    )

    def __init__(self, max_size: int | None = None, max_entries: int | None = None) -> None:
        self._weighted = max_size is not None
        self._nodes: dict[K, list[Any]] = {}
        self._heap: list[tuple[float, int, K]] = []
        # Rebuild the heap when it holds more records than this (stale ones included).
        self._heap_limit = _STALE_MARGIN
        self._last_order = -1  # order numbers: writes and hits, counted
        self._clock = 0.0
        self._named: K | None = None
        self._newest: K | None = None

    @property
    def clock(self) -> float:
        """The priority of the last entry evicted (GreedyDual's inflation value)."""
        return self._clock

    def priority(self, key: K) -> float | None:
        """The current priority of a tracked key."""
        node = self._nodes.get(key)
        return None if node is None else float(node[_PRIORITY])

    # The four below run once or more per request in a trace replay: they index nodes with
    # literals (the field names above are globals, a lookup on every use) and inline the common
    # path of their helpers, on purpose.

    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:
        try:
            node = self._nodes[key]  # no .get(): a method call costs more than the lookup
        except KeyError:  # a late report for a key that has left: nothing to do
            return
        frequency = node[1] + count
        node[1] = frequency
        node[0] = self._clock + frequency * node[2] / node[3]
        # The heap learns of the new priority lazily (see victim).
        self._last_order = node[5] = self._last_order + 1

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        weight = size if size > 1 and self._weighted else 1
        cost = cost if cost > MIN_COST else MIN_COST
        order = self._last_order + 1
        self._last_order = order
        nodes = self._nodes
        if key in nodes:  # an overwrite: one more use, at the new cost and size (may fall)
            node = nodes[key]
            frequency = node[1] + 1
            priority = self._clock + frequency * cost / weight
            node[0], node[1], node[2], node[3] = priority, frequency, cost, weight
            node[4] = node[5] = order
        else:
            priority = self._clock + cost / weight  # one use
            nodes[key] = [priority, 1, cost, weight, order, order]
        heap = self._heap
        if heap and heap[0][2] not in nodes:
            # The top record is stale (usually the key evicted last, left for victim() to pop):
            # replace it, one sift instead of a push now and a pop at the next victim().
            heapreplace(heap, (priority, order, key))
        else:
            heappush(heap, (priority, order, key))
        self._newest = key
        if len(heap) > self._heap_limit:
            self._rebuild()

    def remove(self, key: K) -> None:
        node = self._nodes.pop(key, None)
        if key == self._newest:
            self._newest = None
        if node is not None and key == self._named:
            # An eviction: the clock rises to the evicted priority (deletions leave it alone).
            self._named = None
            if node[0] > self._clock:  # noqa: PLR1730 (max() is a call: slower)
                self._clock = node[0]

    def victim(self) -> K:
        # The least valid record, once the heap's top is brought up to date (self._least,
        # inlined: the top is usually the record of the key evicted last, now stale).
        heap, nodes = self._heap, self._nodes
        while heap:
            _, order, key = heap[0]
            node = nodes.get(key)
            if node is None or node[4] != order:
                heappop(heap)  # stale: removed or overwritten since it was pushed
            elif node[5] != order:
                # Hit since it was pushed: put it back with its current priority and order.
                node[4] = order = node[5]
                heapreplace(heap, (node[0], order, key))
            else:
                break
        else:
            raise KeyError("victim(): the policy tracks no key")
        if key == self._newest and len(nodes) > 1:
            # Spare the entry written last: set its record aside, take the next, put it back.
            spared = heappop(heap)
            key = self._least()
            heappush(heap, spared)
        self._named = key
        return key

    def _least(self) -> K:
        """The key of the least valid record, once the heap's top is brought up to date."""
        heap, nodes = self._heap, self._nodes
        while heap:
            _, order, key = heap[0]
            node = nodes.get(key)
            if node is None or node[_RECORD] != order:
                heappop(heap)  # stale: removed or overwritten since it was pushed
            elif node[_ORDER] != order:
                # Hit since it was pushed: put it back with its current priority and order.
                node[_RECORD] = node[_ORDER]
                heapreplace(heap, (node[_PRIORITY], node[_ORDER], key))
            else:
                return key
        raise KeyError("victim(): the policy tracks no key")

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def _rebuild(self) -> None:
        """Drop the stale records: one per live key, at its current priority."""
        self._heap = [(n[_PRIORITY], n[_ORDER], k) for k, n in self._nodes.items()]
        for node in self._nodes.values():
            node[_RECORD] = node[_ORDER]
        heapify(self._heap)
        # Amortized: the next rebuild waits until stale records again outnumber the live ones.
        self._heap_limit = _STALE_FACTOR * len(self._heap) + _STALE_MARGIN
