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
  (5 x the capacity in entries), remembers popularity beyond the resident keys;
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

import math
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from itertools import islice
from typing import Any, Final, TypeVar

from rgruntime.policies.base import LayerHooks
from rgruntime.policies.climber import DEPTH, GhostClimber
from rgruntime.policies.sketch import MAX_COUNT, FrequencySketch

__all__ = ["RETURN_BONUS", "AdmissionEngine"]

K = TypeVar("K", bound=Hashable)

#: The window's initial share of the capacity (the climber moves it).
WINDOW_SHARE: Final = 0.05
#: Extra counts for a key that returns while the window ghost remembers it.
RETURN_BONUS: Final = 3
#: The window ghost's length (keys turned away), as a fraction of the resident entries. The main
#: ghost (keys evicted from main) only serves the climber, which looks no further back than its
#: depth (:data:`~rgruntime.policies.climber.DEPTH`): that is its length.
WINDOW_GHOST: Final = 0.5
#: Ghosts are trimmed every so many departures at least (a tiny cache would otherwise rebuild
#: its ghost dicts on every eviction).
MIN_TRIM: Final = 256
#: Sample period (sketch aging, window climbing), in events per entry of capacity, and its floor.
#: Five, not Caffeine's ten: popularity fades twice as fast, which ``scarab_recs`` and
#: ``arc_oltp`` at 10% need (window fixed at 40%: 37.64% and 31.76% misses at five, 38.78% and
#: 32.46% at twenty; ten with windows of 30% and 60%: 38.1 to 38.2% and 32.0 to 32.2%). The floor
#: keeps a tiny cache's sketch from aging before it has seen enough requests to rank keys
#: (``2_pools`` at 99 entries: 54.2% misses with a floor of 128, 53.1% with 1,024).
PERIOD_PER_ENTRY: Final = 5
MIN_PERIOD: Final = 1024
#: The sketch never has fewer counters per row than this many entries' worth: a cache of ten
#: entries still needs to tell a thousand keys apart (``lirs_loop`` at 1%).
MIN_SKETCH_ENTRIES: Final = 256

#: A use count no entry reaches: "never leave the window on hits" (``window_hits_promote`` 0).
_NEVER: Final = 1 << 62
#: ``_SATURATED[count + pending]``: the saturated sum of a counter and at most MAX_COUNT more
#: (a tuple index is cheaper than a comparison and a conditional expression).
_SATURATED: Final = tuple(min(value, MAX_COUNT) for value in range(2 * MAX_COUNT + 1))

# A node is a small list (creating one costs a third of an object with __slots__): the fields.
# The hot paths below index nodes with the literal numbers instead of these names: a module
# constant is a global lookup on every use, a literal is free.
_WEIGHT: Final = 0
_SEGMENT: Final = 1
_PENDING: Final = 2  # uses not yet folded into the sketch (the write counts as one)
_SLOT_A: Final = 3  # the key's two counters in the sketch
_SLOT_B: Final = 4
Node = list[Any]


class AdmissionEngine(LayerHooks[K]):
    """W-TinyLFU over ``shares`` (the main segments' shares of main, coldest first).

    ``capacity`` is in bytes when ``weighted``, else in entries; None: learnt from the first
    victim request (the layer is then just over its bound). ``adaptive=False`` freezes the
    window at ``window``. ``window_hits_promote``: a window entry used more than this many times
    moves on into main (0: never; ``tiered`` uses it so that its favourites reach the hot tier).
    """

    __slots__ = (
        "_admitting",
        "_capacity",
        "_climber",
        "_events_left",
        "_limits",
        "_main_departures",
        "_main_ghost",
        "_main_ghost_limit",
        "_main_limit",
        "_main_trim_at",
        "_main_weight",
        "_modulus_a",
        "_modulus_b",
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
        "_table",
        "_top",
        "_weighted",
        "_weights",
        "_width",
        "_window",
        "_window_departures",
        "_window_exit_uses",
        "_window_ghost",
        "_window_ghost_limit",
        "_window_hits_promote",
        "_window_limit",
        "_window_share",
        "_window_trim_at",
    )

    def __init__(
        self,
        shares: Sequence[float],
        *,
        capacity: int | None,
        weighted: bool,
        window: float = WINDOW_SHARE,
        adaptive: bool = True,
        window_hits_promote: int = 0,
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
        # A window entry used more than this many times moves on into main (0: never). For
        # tiered: a key read on every round never reaches the window's end, yet must be able to
        # climb the tiers. Not while main has no room at all (a window of the whole cache).
        self._window_hits_promote = window_hits_promote
        self._window_exit_uses = _NEVER  # window_hits_promote once main has room (_set_limits)
        self._nodes: dict[K, Node] = {}
        self._queues: list[OrderedDict[K, None]] = [OrderedDict() for _ in range(self._top + 1)]
        self._weights = [0] * (self._top + 1)
        self._limits = [0] * (self._top + 1)
        self._main_limit = self._main_weight = self._window_limit = 0
        # Keys that changed main segment (promoted or demoted), when a subclass wants to know
        # (tiered): None skips the work. The window and segment 1 count as one tier.
        self._moves: list[K] | None = None
        self._window_ghost_limit = self._main_ghost_limit = 1
        self._return_depth = 1.0
        self._window, self._probation = self._queues[0], self._queues[1]
        # Ghosts: key -> its departure number on that side. A ghost remembers a key while it is
        # among that side's last ``limit`` departures; older entries are dropped in batches
        # (when the departures reach ``trim_at``), a plain dict being far cheaper than an
        # OrderedDict trimmed on every departure.
        self._window_ghost: dict[K, int] = {}
        self._main_ghost: dict[K, int] = {}
        self._window_departures = self._main_departures = 0
        self._window_trim_at = self._main_trim_at = 0
        self._returns = [0, 0]
        # The key victim() named last, and the candidate to admit once that key is removed.
        self._named: K | None = None
        self._admitting: K | None = None
        # Events left in this sample period: counted down, so the hot paths compare with a
        # literal rather than load the period too.
        self._period = self._events_left = MIN_PERIOD
        entries = capacity if capacity is not None and not weighted else 0
        self._use_sketch(FrequencySketch(max(entries, MIN_SKETCH_ENTRIES)))
        if capacity is not None:
            self._set_limits()

    # -- the policy interface --------------------------------------------------------------------
    #
    # These four run once or more per request in a trace replay, and their own work is a few
    # dict operations: attribute lookups, helper calls and global names cost as much. So they
    # bind locals, index nodes with literals (see the field names above), read the sketch's
    # table and moduli from copies on the engine, and inline the common path of the helpers
    # (promotion, admission, the duel), on purpose.

    # Branchy on purpose: the hit path is inlined (see above).
    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:  # noqa: PLR0912
        try:
            node = self._nodes[key]  # no .get(): a method call costs more than the lookup
        except KeyError:  # a late report for a key that has left: nothing to do
            return
        node[2] += count
        segment = node[1]
        if segment == self._top:
            self._queues[segment].move_to_end(key)
        elif segment == 0:
            # "tiered" moves keys used often on out of the window (never for "lfu": the
            # threshold is then out of reach, one comparison on the hit path either way).
            if node[2] > self._window_exit_uses:
                self._leave_window(key, node)
            else:
                self._window.move_to_end(key)
        else:
            # A hit in main below the top: one segment hotter (inlined: with the tiers of
            # ``tiered`` most hits land in a tier below the top).
            queues, weights = self._queues, self._weights
            hotter = segment + 1
            lower_queue = queues[segment]
            del lower_queue[key]
            upper = queues[hotter]
            upper[key] = None
            node[1] = hotter
            weight = node[0]
            moves = self._moves
            if moves is not None:
                moves.append(key)
            limits = self._limits
            if weights[hotter] + weight > limits[hotter]:
                # Usually the hotter segment is full and its oldest entry steps down to where
                # this one came from: done inline. With equal weights (always, without a byte
                # budget) the two segments' weights do not change, and every segment above
                # the coldest is within its limit (see _fit_segments): nothing more to check.
                demoted, _ = upper.popitem(last=False)
                lower_queue[demoted] = None
                lower = self._nodes[demoted]
                lower[1] = segment
                if moves is not None:
                    moves.append(demoted)
                difference = weight - lower[0]
                if difference:
                    weights[segment] -= difference
                    weights[hotter] += difference
                    # Still over (unequal weights): demote further.
                    if weights[hotter] > limits[hotter] or (
                        segment > 1 and weights[segment] > limits[segment]
                    ):
                        self._demote(hotter)
            else:
                weights[segment] -= weight
                weights[hotter] += weight
            if count > 1 and hotter < self._top:
                # A late report of several hits: as many promotions as hits, as if each had
                # been reported (a live layer reports the hits of a key in one call).
                self._promote(key, node, count - 1)
        left = self._events_left - count
        self._events_left = left
        if left <= 0:
            self._end_period()

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        nodes = self._nodes
        # "size > 1" first: a unit size (every entry of an unweighted cache) decides alone.
        weight = size if size > 1 and self._weighted else 1
        if key in nodes:  # an overwrite: a use of the key, perhaps with a new weight
            node = nodes[key]
            segment = node[1]
            self._weights[segment] += weight - node[0]
            if segment:
                self._main_weight += weight - node[0]
            node[0] = weight
            node[2] += 1
            self._queues[segment].move_to_end(key)
            if segment > 1:
                self._fit_segments()  # a heavier entry may put its segment over its limit
        else:
            pending = 1
            if key in self._window_ghost:
                age = self._window_departures - self._window_ghost.pop(key)
                if age < self._window_ghost_limit:  # still remembered (see __init__)
                    pending += RETURN_BONUS
                    if age < self._return_depth:
                        self._returns[0] += 1  # it left recently: a larger window would have hit
            elif (
                key in self._main_ghost
                and self._main_departures - self._main_ghost.pop(key) < self._return_depth
            ):
                self._returns[1] += 1  # the same, for a larger main
            code = hash(key)  # sketch.slots(key), inlined
            nodes[key] = [
                weight,
                0,
                pending,
                code % self._modulus_a,
                self._width + code % self._modulus_b,
            ]
            self._window[key] = None
            weights = self._weights
            weights[0] += weight
            # Main's room first: in a full cache it is the condition that fails.
            if self._main_weight < self._main_limit and weights[0] > self._window_limit:
                self._settle()
        left = self._events_left - 1
        self._events_left = left
        if left <= 0:
            self._end_period()

    def remove(self, key: K) -> None:
        try:
            node = self._nodes.pop(key)
        except KeyError:  # untracked: nothing to do
            return
        weight, segment, pending, slot_a, slot_b = node
        del self._queues[segment][key]
        weights = self._weights
        weights[segment] -= weight
        if segment:
            self._main_weight -= weight
        if key == self._named:  # an eviction, not a deletion: remember it, admit the winner
            self._named = None
            if segment:
                departures = self._main_departures + 1
                self._main_departures = self._main_ghost[key] = departures
                if departures >= self._main_trim_at:
                    self._main_ghost = self._forget(self._main_ghost, self._main_ghost_limit)
                    self._main_trim_at = departures + max(self._main_ghost_limit, MIN_TRIM)
            else:
                departures = self._window_departures + 1
                self._window_departures = self._window_ghost[key] = departures
                if departures >= self._window_trim_at:
                    self._window_ghost = self._forget(self._window_ghost, self._window_ghost_limit)
                    self._window_trim_at = departures + max(self._window_ghost_limit, MIN_TRIM)
            admitting = self._admitting
            if admitting is not None:
                # The candidate that won its duel moves from the window to main's coldest
                # segment (inlined: it follows most evictions from main).
                self._admitting = None
                new = self._nodes.get(admitting)
                if new is not None and new[1] == 0:
                    self._window_departures += 1  # it leaves the window too (see _returns)
                    del self._window[admitting]
                    self._probation[admitting] = None
                    new[1] = 1
                    weight = new[0]
                    weights[0] -= weight
                    weights[1] += weight
                    self._main_weight += weight
        if pending:  # fold the key's uncounted uses into the sketch (sketch.add, inlined)
            if pending > MAX_COUNT:  # noqa: PLR1730 (min() is a call: slower)
                pending = MAX_COUNT  # the counters saturate there anyway
            table = self._table
            table[slot_a] = _SATURATED[table[slot_a] + pending]
            table[slot_b] = _SATURATED[table[slot_b] + pending]

    def victim(self) -> K:
        if self._capacity is None:
            if not self._nodes:
                raise KeyError("victim(): the policy tracks no key")
            self.set_capacity(max(1, sum(self._weights) - 1))
        # The window over its share, and main full (or still so once the window settled in):
        # the window's oldest entry must win a place in main or leave.
        if self._weights[0] > self._window_limit and (
            self._main_weight >= self._main_limit or self._settle()
        ):
            for candidate in self._window:  # noqa: B007 (the first key: cheaper than next(iter()))
                break
            # The duel (inlined: it runs on every miss of a full cache). Frequencies are sketch
            # estimates plus pending uses, saturated as the counters are; the candidate needs
            # two more than the incumbent ("- 1": the write that brought it in is no evidence
            # of popularity; a tie keeps the incumbent). Saturating both sides and comparing
            # "challenger - 1 > holder" is the same as the test below.
            table, nodes = self._table, self._nodes
            new = nodes[candidate]
            first, second = table[new[3]], table[new[4]]
            challenger = (first if first < second else second) + new[2]
            # Below 2 the candidate loses to any incumbent: no need to look one up (most of
            # the misses of a scan or of one-hit keys end here).
            if challenger > 1 and new[0] <= self._main_limit:
                incumbent: K | None
                for incumbent in self._probation:  # noqa: B007 (the first key)
                    break
                else:
                    incumbent = self._coldest()
                if incumbent is not None:
                    old = nodes[incumbent]
                    first, second = table[old[3]], table[old[4]]
                    if (first if first < second else second) + old[2] + 1 < (
                        challenger if challenger < MAX_COUNT else MAX_COUNT
                    ):
                        self._admitting = candidate
                        self._named = incumbent
                        return incumbent
            self._admitting = None
            self._named = candidate
            return candidate
        # The window is within its share, so main is over its own (the window just grew).
        key = self._coldest()
        if key is None:
            for key in self._window:  # noqa: B007 (the first key)
                break
            else:
                raise KeyError("victim(): the policy tracks no key")
        self._admitting = None
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
        self._fit_segments()

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
        table = self._table
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

    def _fit_segments(self) -> None:
        """Demote until every segment above the coldest is within its limit.

        An invariant the hit path relies on (it checks only when weights differ): kept after
        everything that raises a segment's weight or lowers its limit other than a hit (an
        overwrite with a heavier entry, a resize, a move of the window's boundary).
        """
        if any(map(int.__gt__, self._weights[2:], self._limits[2:])):
            self._demote(self._top)

    def _leave_window(self, key: K, node: Node) -> None:
        """Move a window entry into main's coldest segment (main may then be over its limit:
        the next victim comes from main)."""
        del self._window[key]
        self._probation[key] = None
        node[_SEGMENT] = 1
        weight = node[_WEIGHT]
        self._weights[0] -= weight
        self._weights[1] += weight
        self._main_weight += weight
        self._window_departures += 1

    def _promote(self, key: K, node: Node, steps: int) -> None:
        """Move a main entry ``steps`` segments hotter (at most to the top), one at a time, each
        step demoting the overflow of the segment it enters."""
        queues, weights = self._queues, self._weights
        segment = node[_SEGMENT]
        while steps > 0 and 0 < segment < self._top:
            steps -= 1
            del queues[segment][key]
            segment += 1
            queues[segment][key] = None
            node[_SEGMENT] = segment
            weights[segment - 1] -= node[_WEIGHT]
            weights[segment] += node[_WEIGHT]
            if self._moves is not None:
                self._moves.append(key)
            self._demote(segment)
            segment = node[_SEGMENT]  # the demotions may have moved it back down

    def _settle(self) -> bool:
        """Move the window's overflow into main while main has room (no duel needed).

        True if the window is still over its share (main is full: a duel must decide).
        """
        window, probation = self._queues[0], self._queues[1]
        weights, nodes = self._weights, self._nodes
        room = self._main_limit - self._main_weight
        while window and weights[0] > self._limits[0]:
            key = next(iter(window))
            node = nodes[key]
            weight = node[_WEIGHT]
            if weight > room:
                return True
            room -= weight
            self._window_departures += 1
            del window[key]
            probation[key] = None
            node[_SEGMENT] = 1
            weights[0] -= weight
            weights[1] += weight
            self._main_weight += weight
        return False

    def _use_sketch(self, sketch: FrequencySketch) -> None:
        """Adopt ``sketch``, with copies of what the hot paths read of it."""
        self._sketch = sketch
        self._table = sketch.table  # halve() works in place: this stays the table
        self._width, self._modulus_a, self._modulus_b = (
            sketch.width,
            sketch.modulus_a,
            sketch.modulus_b,
        )

    def _set_limits(self) -> None:
        capacity = self._capacity
        assert capacity is not None
        limits = self._limits
        window = min(capacity, max(1, round(capacity * self._window_share)))
        limits[0] = self._window_limit = window
        main = self._main_limit = capacity - window
        self._window_exit_uses = (
            self._window_hits_promote if self._window_hits_promote and main else _NEVER
        )
        # The coldest segment takes what the hotter ones leave (it is where evictions happen).
        for segment in range(2, self._top + 1):
            limits[segment] = int(main * self._shares[segment - 1])
        limits[1] = main - sum(limits[2:])
        entries = max(1, len(self._nodes) if self._weighted else capacity)
        period = max(MIN_PERIOD, PERIOD_PER_ENTRY * entries)
        self._events_left += period - self._period  # the period in progress ends at its new length
        self._period = period
        self._window_ghost_limit = max(1, int(WINDOW_GHOST * entries))
        self._return_depth = DEPTH * entries
        # Remembering older departures would change nothing: a smaller dict is faster.
        self._main_ghost_limit = max(1, math.ceil(self._return_depth))

    @staticmethod
    def _forget(ghost: dict[K, int], limit: int) -> dict[K, int]:
        """``ghost`` without the entries older than its last ``limit`` (in C: no Python loop).

        Entries are in departure order, so the last ``limit`` hold every key that left among
        the last ``limit`` departures (and perhaps a few older ones, which lookups ignore).
        """
        if len(ghost) <= limit:
            return ghost
        return dict(islice(ghost.items(), len(ghost) - limit, None))

    def _end_period(self) -> None:
        """Age the sketch (growing it if the cache outgrew it) and let the window climb."""
        self._events_left = self._period
        nodes = self._nodes
        sketch = self._sketch
        if len(nodes) * 4 > sketch.width:
            sketch = FrequencySketch(len(nodes))
            self._use_sketch(sketch)
            for key, node in nodes.items():
                node[_SLOT_A], node[_SLOT_B] = sketch.slots(key)
        # Fold every pending use in (sketch.add, inlined): a loop over every entry, so literal
        # field indexes and locals only (module names cost a lookup on each turn).
        table, saturated, ceiling = sketch.table, _SATURATED, MAX_COUNT
        for node in nodes.values():
            pending = node[2]
            if pending:
                node[2] = 0
                if pending > ceiling:  # noqa: PLR1730 (min() is a call: slower)
                    pending = ceiling
                slot = node[3]
                table[slot] = saturated[table[slot] + pending]
                slot = node[4]
                table[slot] = saturated[table[slot] + pending]
        sketch.halve()
        window_returns, main_returns = self._returns
        self._returns = [0, 0]
        if self._climber is not None and self._capacity is not None:
            share = self._climber.climb(window_returns, main_returns, self._return_depth)
            if share != self._window_share:
                self._window_share = share
                self._set_limits()
                self._fit_segments()
        elif self._capacity is not None:
            self._set_limits()  # the period follows the resident entries of a weighted cache
