"""The engine behind ``lfu`` and ``tiered``: a window, a segmented main area, TinyLFU admission.

Layout (segment 0 is the window; segments 1..n are the main area, coldest first):

- **window** (LRU): every new entry starts here, so a burst of new keys still hits;
- **main**, a segmented LRU: segment 1 (*probation*, the coldest) receives the entries admitted
  from the window; a hit promotes an entry one segment hotter; a segment over its limit demotes
  its least recently used entry one segment colder. ``lfu`` has two main segments (probation and
  protected, 20/80, as in Caffeine); ``tiered`` has the configured tiers;
- **admission** (Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission
  Policy", ACM ToS 2017): when the cache is full, the window's oldest entry (the candidate) and
  the coldest main entry (the incumbent) are compared by estimated frequency and the loser leaves.
  The candidate is judged on its history and its hits in the window, not on the write that
  brought it in, and a tie keeps the incumbent: otherwise an incumbent whose count has aged to
  nothing loses to any newcomer, and a cyclic scan flushes the cache (``lirs_loop``);
- the **frequency sketch** (:mod:`~rgruntime.policies.sketch`), halved every sample period
  (10 x the capacity in entries), remembers popularity beyond the resident keys;
- **ghosts**: the keys recently turned away from the window and recently evicted from main.
  They drive the window's size (:mod:`~rgruntime.policies.climber`), and a key that returns while
  the window ghost still remembers it gets :data:`RETURN_BONUS` extra counts, because a quick
  return is recency the sketch undervalues (2Q's and S3-FIFO's insight: without it ``lfu``
  trailed 2Q by 0.5 to 0.7 points on ``orm_busy`` at 10%).

Hits on resident keys are counted on the key's record (*pending*) and folded into the sketch when
the key leaves or when the sketch ages. A resident key's frequency is its sketch estimate plus its
pending count: the same as counting every hit in the sketch at once, except that pending hits do
not leak into colliding keys' counters, and the sketch stays off the hit path.

Weights: with ``max_size`` entries weigh their size in bytes, otherwise one each. The layer's actor
enforces the bounds; the engine uses its capacity only to size the segments, and always names a
victim when asked.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any, Final, Generic, TypeVar

from rgruntime.policies.climber import DEPTH, GhostClimber
from rgruntime.policies.sketch import MAX_COUNT, FrequencySketch

__all__ = ["RETURN_BONUS", "AdmissionEngine"]

K = TypeVar("K", bound=Hashable)

#: The window's initial share of the capacity (the climber moves it).
WINDOW_SHARE: Final = 0.05
#: Extra counts for a key that returns while the window ghost remembers it.
RETURN_BONUS: Final = 3
#: Ghost lengths, as fractions of the resident entries: keys turned away, keys evicted from main.
WINDOW_GHOST: Final = 0.5
MAIN_GHOST: Final = 1.0
#: Sample period (sketch aging, window climbing), in events per entry of capacity, and its floor.
PERIOD_PER_ENTRY: Final = 10
MIN_PERIOD: Final = 128
#: The sketch never has fewer counters per row than this many entries' worth: a cache of ten
#: entries still needs to tell a thousand keys apart (``lirs_loop`` at 1%).
MIN_SKETCH_ENTRIES: Final = 256

# A node is a small list (creating one costs a third of an object with __slots__): the fields.
_WEIGHT: Final = 0
_SEGMENT: Final = 1
_PENDING: Final = 2  # uses not yet folded into the sketch (the write counts as one)
_SLOT_A: Final = 3  # the key's two counters in the sketch
_SLOT_B: Final = 4
Node = list[Any]


class AdmissionEngine(Generic[K]):
    """W-TinyLFU over ``shares`` (the main segments' shares of main, coldest first).

    ``capacity`` is in bytes when ``weighted``, else in entries; None: learnt from the first
    victim request (the layer is then just over its bound). ``adaptive=False`` freezes the
    window at ``window``.
    """

    __slots__ = (
        "_admitting",
        "_capacity",
        "_climber",
        "_events",
        "_limits",
        "_main_departures",
        "_main_ghost",
        "_main_ghost_limit",
        "_main_limit",
        "_main_weight",
        "_moves",
        "_named",
        "_nodes",
        "_period",
        "_probation",
        "_queues",
        "_return_depth",
        "_returns",
        "_shares",
        "_sketch",
        "_top",
        "_weighted",
        "_weights",
        "_window",
        "_window_departures",
        "_window_ghost",
        "_window_ghost_limit",
        "_window_share",
    )

    def __init__(
        self,
        shares: Sequence[float],
        *,
        capacity: int | None,
        weighted: bool,
        window: float = WINDOW_SHARE,
        adaptive: bool = True,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._weighted = weighted
        self._capacity = capacity
        total = sum(shares)
        self._shares = [share / total for share in shares]
        self._top = len(shares)  # the hottest segment
        self._window_share = window
        self._climber = GhostClimber(window) if adaptive else None
        self._nodes: dict[K, Node] = {}
        self._queues: list[OrderedDict[K, None]] = [OrderedDict() for _ in range(self._top + 1)]
        self._weights = [0] * (self._top + 1)
        self._limits = [0] * (self._top + 1)
        self._main_limit = self._main_weight = 0
        # Keys that changed main segment (promoted or demoted), when a subclass wants to know
        # (tiered): None skips the work. The window and segment 1 count as one tier.
        self._moves: list[K] | None = None
        self._window_ghost_limit = self._main_ghost_limit = 1
        self._return_depth = 1.0
        self._window, self._probation = self._queues[0], self._queues[1]
        # Ghosts: key -> its departure number on that side (to tell how recently it left).
        self._window_ghost: OrderedDict[K, int] = OrderedDict()
        self._main_ghost: OrderedDict[K, int] = OrderedDict()
        self._window_departures = self._main_departures = 0
        self._returns = [0, 0]
        # The key victim() named last, and the candidate to admit once that key is removed.
        self._named: K | None = None
        self._admitting: K | None = None
        self._events = 0
        self._period = MIN_PERIOD
        entries = capacity if capacity is not None and not weighted else 0
        self._sketch = FrequencySketch(max(entries, MIN_SKETCH_ENTRIES))
        if capacity is not None:
            self._set_limits()

    # -- the policy interface --------------------------------------------------------------------
    #
    # These four run once or more per request in a trace replay: they bind locals, inline the
    # sketch reads and avoid helper calls on the common path, on purpose.

    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:
        node = self._nodes.get(key)
        if node is None:
            return
        node[_PENDING] += count
        segment = node[_SEGMENT]
        if segment == 0 or segment == self._top:  # noqa: PLR1714 (no tuple built per hit)
            self._queues[segment].move_to_end(key)
        else:
            self._promote(key, node, segment)
        self._events += count
        if self._events >= self._period:
            self._end_period()

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        weight = size if self._weighted and size > 1 else 1
        nodes = self._nodes
        node = nodes.get(key)
        if node is not None:  # an overwrite: a use of the key, perhaps with a new weight
            segment = node[_SEGMENT]
            self._weights[segment] += weight - node[_WEIGHT]
            if segment:
                self._main_weight += weight - node[_WEIGHT]
            node[_WEIGHT] = weight
            node[_PENDING] += 1
            self._queues[segment].move_to_end(key)
        else:
            pending = 1
            if key in self._window_ghost:
                pending += RETURN_BONUS
                self._returned(0, self._window_ghost.pop(key))
            elif key in self._main_ghost:
                self._returned(1, self._main_ghost.pop(key))
            code, sketch = hash(key), self._sketch  # sketch.slots(key), inlined
            nodes[key] = [
                weight,
                0,
                pending,
                code % sketch.modulus_a,
                sketch.width + code % sketch.modulus_b,
            ]
            self._window[key] = None
            weights = self._weights
            weights[0] += weight
            if weights[0] > self._limits[0] and self._main_weight < self._main_limit:
                self._settle()
        self._events += 1
        if self._events >= self._period:
            self._end_period()

    def remove(self, key: K) -> None:
        node = self._nodes.pop(key, None)
        if node is None:
            return
        segment = node[_SEGMENT]
        del self._queues[segment][key]
        weight = node[_WEIGHT]
        self._weights[segment] -= weight
        if segment:
            self._main_weight -= weight
        if key == self._named:  # an eviction, not a deletion: remember it, admit the winner
            self._named = None
            if segment:
                ghost = self._main_ghost
                self._main_departures += 1
                ghost[key] = self._main_departures
                if len(ghost) > self._main_ghost_limit:
                    ghost.popitem(last=False)
            else:
                ghost = self._window_ghost
                self._window_departures += 1
                ghost[key] = self._window_departures
                if len(ghost) > self._window_ghost_limit:
                    ghost.popitem(last=False)
            admitting = self._admitting
            if admitting is not None:
                self._admitting = None
                self._admit(admitting)
        pending = node[_PENDING]
        if pending:
            table = self._sketch.table
            slot = node[_SLOT_A]
            value = table[slot] + pending
            table[slot] = value if value < MAX_COUNT else MAX_COUNT
            slot = node[_SLOT_B]
            value = table[slot] + pending
            table[slot] = value if value < MAX_COUNT else MAX_COUNT

    def victim(self) -> K:
        nodes = self._nodes
        if not nodes:
            raise KeyError("victim(): the policy tracks no key")
        if self._capacity is None:
            self.set_capacity(max(1, sum(self._weights) - 1))
        self._admitting = None
        weights, window_limit = self._weights, self._limits[0]
        if weights[0] > window_limit:
            if self._main_weight < self._main_limit:
                self._settle()
            window = self._window
            if window and weights[0] > window_limit:
                # Main is full: the window's oldest entry must win a place or leave.
                candidate = next(iter(window))
                probation = self._probation
                incumbent = next(iter(probation)) if probation else self._coldest()
                if incumbent is not None:
                    # The duel (inlined: it runs on every miss of a full cache).
                    table = self._sketch.table
                    new, old = nodes[candidate], nodes[incumbent]
                    first, second = table[new[_SLOT_A]], table[new[_SLOT_B]]
                    challenger = (first if first < second else second) + new[_PENDING]
                    first, second = table[old[_SLOT_A]], table[old[_SLOT_B]]
                    holder = (first if first < second else second) + old[_PENDING]
                    # Saturate as the counters do. "- 1": the write that brought the candidate
                    # in is no evidence of popularity; a tie keeps the incumbent.
                    if challenger > MAX_COUNT:  # noqa: PLR1730 (min() is a call: slower)
                        challenger = MAX_COUNT
                    if (
                        challenger - 1 > (holder if holder < MAX_COUNT else MAX_COUNT)
                        and new[_WEIGHT] <= self._main_limit
                    ):
                        self._admitting = candidate
                        self._named = incumbent
                        return incumbent
                self._named = candidate
                return candidate
        # The window is within its share, so main is over its own (the window just grew).
        key = self._coldest()
        if key is None:
            key = next(iter(self._queues[0]))
        self._named = key
        return key

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    # -- introspection and control ---------------------------------------------------------------

    @property
    def capacity(self) -> int | None:
        """The capacity the segments are sized from (bytes when weighted, else entries)."""
        return self._capacity

    @property
    def window_share(self) -> float:
        """The window's current share of the capacity."""
        return self._window_share

    def set_capacity(self, capacity: int) -> None:
        """Resize (a budget changed): segments shrink lazily, as victims are asked for."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._set_limits()

    def frequency(self, key: K) -> int:
        """The estimated frequency of a tracked key (0 for an untracked one)."""
        node = self._nodes.get(key)
        return 0 if node is None else self._frequency(node)

    def segment_of(self, key: K) -> int | None:
        """0 for the window, 1..n for the main segments from the coldest; None if untracked."""
        node = self._nodes.get(key)
        return None if node is None else int(node[_SEGMENT])

    def segment_weights(self) -> tuple[int, ...]:
        return tuple(self._weights)

    def segment_limits(self) -> tuple[int, ...]:
        return tuple(self._limits)

    # -- internals -------------------------------------------------------------------------------

    def _frequency(self, node: Node) -> int:
        """A resident key's estimated frequency: its sketch estimate plus its pending uses."""
        table = self._sketch.table
        first, second = table[node[_SLOT_A]], table[node[_SLOT_B]]
        estimate = (first if first < second else second) + node[_PENDING]
        return estimate if estimate < MAX_COUNT else MAX_COUNT

    def _coldest(self) -> K | None:
        """The oldest key of the coldest non-empty main segment (None if main is empty)."""
        queues = self._queues
        if queues[1]:
            return next(iter(queues[1]))
        for queue in queues[2:]:
            if queue:
                return next(iter(queue))
        return None

    def _admit(self, key: K) -> None:
        """Move a window entry that won its duel into main's coldest segment."""
        node = self._nodes.get(key)
        if node is None or node[_SEGMENT] != 0:
            return
        del self._queues[0][key]
        self._queues[1][key] = None
        node[_SEGMENT] = 1
        self._weights[0] -= node[_WEIGHT]
        self._weights[1] += node[_WEIGHT]
        self._main_weight += node[_WEIGHT]

    def _promote(self, key: K, node: Node, segment: int) -> None:
        """A hit in main below the top: move ``key`` one segment hotter, demoting overflow."""
        queues, weights = self._queues, self._weights
        hotter = segment + 1
        del queues[segment][key]
        upper = queues[hotter]
        upper[key] = None
        node[_SEGMENT] = hotter
        weight = node[_WEIGHT]
        weights[segment] -= weight
        weights[hotter] += weight
        moves = self._moves
        if moves is not None:
            moves.append(key)
        if weights[hotter] > self._limits[hotter]:
            # Usually one entry steps down to where this one came from: done inline.
            demoted, _ = upper.popitem(last=False)
            queues[segment][demoted] = None
            lower = self._nodes[demoted]
            lower[_SEGMENT] = segment
            weight = lower[_WEIGHT]
            weights[hotter] -= weight
            weights[segment] += weight
            if moves is not None:
                moves.append(demoted)
            if weights[hotter] > self._limits[hotter] or (
                segment > 1 and weights[segment] > self._limits[segment]
            ):
                self._demote(hotter)

    def _demote(self, segment: int) -> None:
        """Move the oldest entries of ``segment`` and colder ones down until each fits."""
        queues, weights, limits, nodes = self._queues, self._weights, self._limits, self._nodes
        for upper in range(segment, 1, -1):
            queue, lower = queues[upper], upper - 1
            while weights[upper] > limits[upper] and queue:
                key, _ = queue.popitem(last=False)
                queues[lower][key] = None
                node = nodes[key]
                node[_SEGMENT] = lower
                weights[upper] -= node[_WEIGHT]
                weights[lower] += node[_WEIGHT]
                if self._moves is not None:
                    self._moves.append(key)

    def _settle(self) -> None:
        """Move the window's overflow into main while main has room (no duel needed)."""
        window, probation = self._queues[0], self._queues[1]
        weights, nodes = self._weights, self._nodes
        room = self._main_limit - self._main_weight
        while window and weights[0] > self._limits[0]:
            key = next(iter(window))
            node = nodes[key]
            weight = node[_WEIGHT]
            if weight > room:
                return
            room -= weight
            del window[key]
            probation[key] = None
            node[_SEGMENT] = 1
            weights[0] -= weight
            weights[1] += weight
            self._main_weight += weight

    def _set_limits(self) -> None:
        capacity = self._capacity
        assert capacity is not None
        limits = self._limits
        window = min(capacity, max(1, round(capacity * self._window_share)))
        limits[0] = window
        main = self._main_limit = capacity - window
        # The coldest segment takes what the hotter ones leave (it is where evictions happen).
        for segment in range(2, self._top + 1):
            limits[segment] = int(main * self._shares[segment - 1])
        limits[1] = main - sum(limits[2:])
        entries = max(1, len(self._nodes) if self._weighted else capacity)
        self._period = max(MIN_PERIOD, PERIOD_PER_ENTRY * entries)
        self._window_ghost_limit = max(1, int(WINDOW_GHOST * entries))
        self._main_ghost_limit = max(1, int(MAIN_GHOST * entries))
        self._return_depth = DEPTH * entries

    def _returned(self, side: int, departure: int) -> None:
        """A key came back while ghost ``side`` (0: window, 1: main) remembered it: a miss that
        more room on that side would have avoided, if it left recently enough."""
        departures = self._main_departures if side else self._window_departures
        if departures - departure < self._return_depth:
            self._returns[side] += 1

    def _end_period(self) -> None:
        """Age the sketch (growing it if the cache outgrew it) and let the window climb."""
        self._events = 0
        nodes = self._nodes
        sketch = self._sketch
        if len(nodes) * 4 > sketch.width:
            sketch = self._sketch = FrequencySketch(len(nodes))
            for key, node in nodes.items():
                node[_SLOT_A], node[_SLOT_B] = sketch.slots(key)
        table = sketch.table  # fold every pending use in (sketch.add, inlined: O(entries))
        for node in nodes.values():
            pending = node[_PENDING]
            if pending:
                node[_PENDING] = 0
                slot = node[_SLOT_A]
                value = table[slot] + pending
                table[slot] = value if value < MAX_COUNT else MAX_COUNT
                slot = node[_SLOT_B]
                value = table[slot] + pending
                table[slot] = value if value < MAX_COUNT else MAX_COUNT
        sketch.halve()
        window_returns, main_returns = self._returns
        self._returns = [0, 0]
        if self._climber is not None and self._capacity is not None:
            share = self._climber.climb(window_returns, main_returns)
            if share != self._window_share:
                self._window_share = share
                self._set_limits()
                if any(map(int.__gt__, self._weights[2:], self._limits[2:])):
                    self._demote(self._top)
        elif self._capacity is not None:
            self._set_limits()  # the period follows the resident entries of a weighted cache
