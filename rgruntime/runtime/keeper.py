"""A layer's bookkeeping as pure synchronous steps: replay, expire, evict, remove.

The :class:`Keeper` owns what orders and bounds one layer: its eviction policy, the timer, tag and
key indices, and the ghost list of recent evictions. It never suspends and knows nothing of
anyio: the layer's actor drives it (a maintenance pass on each wake-up, invalidations in slices),
and a writer that takes the layer over its budget runs one pass itself, so that the layer is back
within its bounds before the writer's next await (as httpcore's pool is driven by its callers).

**A pass** (:meth:`Keeper.maintain`), in order:

1. replay the access log: first hits and writes, in the order they happened. The policy hears
   every hit: the first hit of an entry since the last pass is logged, its later hits counted on
   the entry and reported with it (``record_access(key, deadline, count)``);
2. expire what is due (at most a slice's worth of work: see :data:`SLICE_SECONDS`);
3. evict until the layer is within ``max_entries`` and its byte budget;
4. hold the entries that changed tier to their tier's TTL (tiered policies).

Long work (expiring, invalidating or clearing many entries) is cut in slices of at most
:data:`SLICE_SECONDS` of CPU time; the actor checkpoints between slices, so the event loop never
waits longer than a slice.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Final

from rgruntime.policies import EvictionPolicy, make_policy
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.budgets import BudgetReport
from rgruntime.runtime.entry import Entry
from rgruntime.runtime.indices import KeyIndex, TagIndex, TimerIndex
from rgruntime.runtime.layer_state import LayerState
from rgruntime.runtime.removals import RemovalReason

__all__ = ["SLICE_SECONDS", "Keeper"]

logger = logging.getLogger("rgruntime.runtime")

#: The longest a step of bulk work (expiry, invalidation, clear) runs before the actor lets the
#: event loop serve others. CPU time: the budget the issue sets for a stall is 5 ms.
SLICE_SECONDS: Final = 0.001

#: How many removals run between two looks at the clock in a slice.
_CHECK_EVERY: Final = 8

#: The fewest ghosts (recently evicted keys) a layer remembers.
_MIN_GHOSTS: Final = 64


class Keeper:
    """Bookkeeping of one layer (see the module documentation)."""

    def __init__(self, state: LayerState) -> None:
        self._state = state
        config = state.config
        options: dict[str, Any] = {"tiers": config.tiers} if config.tiers else {}
        self._policy: EvictionPolicy[str] = make_policy(
            config.strategy, max_size=config.max_size, max_entries=config.max_entries, **options
        )
        self._policy.watch_ttl_caps()
        self._timers = TimerIndex()
        self._tags = TagIndex()
        self._keys = KeyIndex()
        self._max_entries = config.max_entries
        # Keys evicted recently and their sizes: a load of one of them is a miss that a larger
        # budget would have avoided (see rgruntime.runtime.budgets).
        self._ghosts: OrderedDict[str, int] = OrderedDict()
        self._ghost_bytes = 0
        self._ghost_value = 0.0
        self.ghost_hits = 0
        self.second_chances = 0
        self.maintenance_runs = 0
        self.budget_changes = 0

    # -- what the actor and the face read ---------------------------------------------------------

    def timer_count(self) -> int:
        return len(self._timers)

    def tag_count(self) -> int:
        return len(self._tags)

    def policy_size(self) -> int:
        return len(self._policy)

    def next_deadline(self) -> float:
        stale = self._state.stale
        deadline = self._timers.next_deadline()
        return deadline if stale is None else min(deadline, stale.next_deadline())

    def over_bounds(self) -> bool:
        """Whether the layer holds more than ``max_entries`` entries or its byte budget."""
        state = self._state
        max_size = state.max_size
        return (self._max_entries is not None and len(state.entries) > self._max_entries) or (
            max_size is not None and state.size_bytes > max_size
        )

    # -- the pass ---------------------------------------------------------------------------------

    def maintain(self) -> bool:
        """One maintenance pass (see the module documentation). True if expiry is behind: due
        timers are left for another pass (the actor runs it after a checkpoint)."""
        state = self._state
        self.maintenance_runs += 1
        if state.log:
            self._replay()
        now = state.clock.now()
        behind = False
        if state.stale is not None:
            state.size_bytes -= state.stale.drop_due(now)
        if self._timers.next_deadline() <= now:
            behind = self._expire(now, time.perf_counter() + SLICE_SECONDS)
        if self.over_bounds():
            self._evict()
        for key, ttl in self._policy.take_ttl_caps():
            entry = state.entries.get(key)
            if entry is not None and self._cap(entry, ttl, now):
                self._timers.discard(entry)
                self._timers.add(entry)
        return behind

    def _replay(self) -> None:
        state = self._state
        # Replayed in place, then emptied: the face keeps a bound ``append`` of this very list.
        # Nothing can log during the replay (it never suspends and calls no listener).
        log = state.log
        entries = state.entries
        policy = self._policy
        observers = state.access_observers
        for item in log:
            if type(item) is Entry:
                hits = item.fresh_hits
                if hits and entries.get(item.key) is item:
                    item.hits += hits
                    item.fresh_hits = 0
                    policy.record_access(item.key, item.expires_at, hits)
                    if observers:
                        self._tell("hit", item.key, hits)
            elif type(item) is str:
                if observers:
                    self._tell("miss", item)
            else:
                self._apply_write(*item)
                if observers and item[1] is not None:
                    self._tell("write", item[1].key, item[1].size)
        log.clear()
        state.writes_pending = 0

    def _tell(self, event: str, *arguments: object) -> None:
        """Tell the access observers; one that raises is logged and dropped."""
        observers = self._state.access_observers
        for observer in tuple(observers):
            try:
                getattr(observer, event)(*arguments)
            except Exception:
                logger.exception("access observer %r failed; it is removed", observer)
                observers.remove(observer)

    def _apply_write(self, old: Entry | None, new: Entry | None) -> None:
        # Records replay in the order the writes happened, so a chain such as (None, A),
        # (A, B), (B, None) leaves the indices and the policy as the map is now.
        if old is not None:
            self._unindex(old)
            if new is None:
                self._policy.remove(old.key)
                self._keys.discard(old.key)
        if new is not None:
            self._policy.record_write(new.key, new.size, new.expires_at, new.cost)
            cap = self._policy.ttl_cap(new.key)
            if cap is not None:
                self._cap(new, cap, self._state.clock.now())
            self._index(new)
            if old is None:
                self._keys.add(new.key)

    def _expire(self, now: float, until: float) -> bool:
        entries = self._state.entries
        for count, key in enumerate(self._timers.iter_due(now), 1):
            entry = entries[key]  # timers leave with their entry, so a due timer has one
            self._timers.discard(entry)
            if entry.expires_at > now:
                self._timers.add(entry)  # a sliding TTL moved the deadline: not due yet
            else:
                self._remove(entry, "expired")
                self._state.expirations += 1
                self._keep_stale(entry)
            if count % _CHECK_EVERY == 0 and time.perf_counter() > until:
                return self._timers.next_deadline() <= now
        return False

    def _keep_stale(self, entry: Entry) -> None:
        stale = self._state.stale
        if stale is not None:
            stale.keep(entry)
            self._state.size_bytes += entry.size  # held still: counted in the budget

    def drop_stale(self, selection: Selection | None) -> None:
        """Forget the stale copies ``selection`` selects (None: all of them)."""
        state = self._state
        stale = state.stale
        if stale is None:
            return
        if selection is None:
            state.size_bytes -= stale.clear()
            return
        for key in stale.matching(selection):
            state.size_bytes -= stale.drop(key)

    def _evict(self) -> None:
        """Evict until within the bounds: stale copies first, then what the policy names."""
        state = self._state
        entries = state.entries
        policy = self._policy
        stale = state.stale
        while stale and self.over_bounds():
            state.size_bytes -= stale.drop_oldest()
        while self.over_bounds():
            try:
                key = policy.victim()
            except KeyError:
                break  # nothing the policy may evict (an empty policy: the log is replayed)
            entry = entries[key]
            if entry.fresh_hits:
                # Hit since the policy last heard of it (a hit logged after this pass began
                # cannot happen: the pass never suspends): report it, ask again.
                hits, entry.fresh_hits = entry.fresh_hits, 0
                entry.hits += hits
                policy.record_access(key, entry.expires_at, hits)
                self.second_chances += 1
                continue
            if not state.config.evictable:
                break  # never evicted for space: writes that do not fit were refused instead
            self._remove(entry, "evicted")
            state.evictions += 1
            self._remember_evicted(entry)

    def _cap(self, entry: Entry, ttl: float, now: float) -> bool:
        """Shorten ``entry``'s deadline to ``now + ttl``; True if it changed."""
        if now + ttl >= entry.expires_at:
            return False
        entry.expires_at = now + ttl
        return True

    # -- bulk removals, one slice at a time ------------------------------------------------------

    def selected(self, selection: Selection) -> Iterator[str]:
        """The keys ``selection`` names, lazily (a glob matches the key index as it goes)."""
        yield from selection.keys
        for tag in selection.tags:
            yield from self._tags.iter_keys_under(tag)
        if selection.pattern is not None:
            yield from self._keys.iter_matching(selection.pattern)

    def all_keys(self) -> Iterator[str]:
        """Every key, lazily (see :meth:`selected`)."""
        return self._keys.iter_from()

    def remove_slice(
        self, keys: Iterator[str], reason: RemovalReason, before: int
    ) -> tuple[int, bool]:
        """Remove entries named by ``keys`` and created before sequence ``before`` until the
        iterator ends or the slice's time is up. Returns (live entries removed, finished)."""
        state = self._state
        entries = state.entries
        now = state.clock.now()
        until = time.perf_counter() + SLICE_SECONDS
        live = 0
        for count, key in enumerate(keys, 1):
            entry = entries.get(key)
            # A write made after the call began is newer than what it selected: kept.
            if entry is not None and entry.sequence < before:
                live += entry.expires_at > now
                self._remove(entry, reason)
            if count % _CHECK_EVERY == 0 and time.perf_counter() > until:
                self._count_removed(reason, live)
                return live, False
        self._count_removed(reason, live)
        return live, True

    def _count_removed(self, reason: RemovalReason, live: int) -> None:
        if reason != "dropped":  # a near copy forgotten is no change to the entry
            self._state.invalidations += live

    def _remove(self, entry: Entry, reason: RemovalReason) -> None:
        state = self._state
        del state.entries[entry.key]
        state.retire(entry)
        self._unindex(entry)
        self._keys.discard(entry.key)
        self._policy.remove(entry.key)
        if state.listeners:
            state.listeners.notify(entry.key, reason)

    def _index(self, entry: Entry) -> None:
        self._timers.add(entry)
        if entry.tags:
            self._tags.add(entry.key, entry.tags)

    def _unindex(self, entry: Entry) -> None:
        self._timers.discard(entry)
        if entry.tags:
            self._tags.discard(entry.key, entry.tags)

    # -- ghosts and budgets -----------------------------------------------------------------------

    def _remember_evicted(self, entry: Entry) -> None:
        ghosts = self._ghosts
        self._ghost_bytes += entry.size - ghosts.pop(entry.key, 0)
        ghosts[entry.key] = entry.size
        # As many ghosts as half the live entries: enough to see what a modestly larger budget
        # would catch, without keeping a second cache's worth of keys.
        limit = max(_MIN_GHOSTS, len(self._state.entries) // 2)
        while len(ghosts) > limit:
            self._ghost_bytes -= ghosts.popitem(last=False)[1]

    def evicted_recently(self, key: str) -> bool:
        """Whether ``key`` is on the ghost list (for the layer's miss path)."""
        return key in self._ghosts

    def record_ghost_load(self, seconds: float) -> None:
        """A load of a recently evicted key took ``seconds``: what more budget would have saved."""
        self.ghost_hits += 1
        self._ghost_value += seconds

    def budget_report(self, minimum: int) -> BudgetReport:
        """This period's figures for the supervisor; starts the next period."""
        report = BudgetReport(
            budget=self._state.max_size or 0,
            minimum=minimum,
            ghost_value=self._ghost_value,
            ghost_bytes=self._ghost_bytes,
        )
        self._ghost_value = 0.0
        return report

    def set_max_size(self, size: int) -> bool:
        """A new byte budget (from the supervisor); True if it changed. A smaller one is
        enforced at the next pass."""
        state = self._state
        if size == state.max_size:
            return False
        state.max_size = size
        self.budget_changes += 1
        if state.config.max_size is not None:
            self._policy.set_capacity(size)
        return True
