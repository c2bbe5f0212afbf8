"""A cache layer's public face and its data path.

The caller's task does the cheap, latency-critical part itself (DESIGN.md section 3):

- a **hit** reads the entry map, checks the deadline against the loop's clock and counts itself
  on the entry; the first hit of an entry since the actor last looked also goes on the layer's
  access log, so the eviction policy hears every hit, in order, when the log is replayed. No task
  switch, no channel send;
- a **write** replaces the map entry at once (the next read sees it) and logs a write record. A
  write that takes the layer over its bounds runs a maintenance pass itself, so that the layer
  is back within its budget before the writer's next await;
- a **miss with a loader** starts or joins a single-flight load in the layer's service task group.

The layer's state is shared with its actor (:mod:`rgruntime.runtime.layer_state`); the actor
drives the layer's keeper (policy, indices: :mod:`rgruntime.runtime.keeper`) on wake-ups and
timers, and answers invalidations in slices.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Generic, Literal, TypeVar, overload

import anyio
import anyio.abc
import attrs

from rgruntime.config import LayerConfig
from rgruntime.errors import (
    CapacityError,
    InvalidArgumentError,
    LoadInterruptedError,
    RuntimeClosedError,
)
from rgruntime.runtime.arguments import (
    Selection,
    await_loader,
    check_cost,
    check_key,
    check_loader,
    check_size,
    check_tags,
)
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.entry import NEVER, Entry
from rgruntime.runtime.layer_actor import LayerActor
from rgruntime.runtime.layer_state import AccessObserver, LayerState
from rgruntime.runtime.loads import Load, current_load
from rgruntime.runtime.removals import RemovalListener, RemovalReason
from rgruntime.runtime.stats import CacheStats, LayerStatistics
from rgruntime.sizing import estimate_size, weigh
from rgruntime.units import parse_duration

__all__ = ["ExportedEntry", "Layer", "Lookup", "SlidingLayer", "layer_class", "new_layer"]

#: The least cost a load is given: a load that took no measurable time still cost something.
_MIN_COST: Final = 1e-6

T = TypeVar("T")
D = TypeVar("D")


@attrs.frozen
class Lookup(Generic[T]):
    """What :meth:`Layer.lookup` found: the ``value``, its ``source`` (``"hit"``, ``"loaded"``
    or ``"stale"``) and, for a stale answer, the loader's ``error`` it stands in for."""

    value: T
    source: Literal["hit", "loaded", "stale"]
    error: BaseException | None = None

    @property
    def stale(self) -> bool:
        return self.source == "stale"


@attrs.frozen(kw_only=True)
class ExportedEntry:
    """A live entry as :meth:`Layer.export` hands it out: what a warm restart needs."""

    key: str
    value: Any
    ttl: float | None
    tags: frozenset[str]
    cost: float
    size: int


class Layer:
    """One named cache layer (``response``, ``session``, ``model``, ``tool``, ``memory``...).

    Obtain it from ``runtime.layer(name)``. Every method must be called from the event loop
    thread of the runtime that owns the layer. Keys are strings; values are any Python object
    (``None`` included: pass ``default=MISSING`` to tell a cached ``None`` from a miss).
    """

    def __init__(
        self,
        state: LayerState,
        actor: LayerActor,
        sizer: Callable[[Any], int] = estimate_size,
    ) -> None:
        self._state = state
        self._actor = actor
        self._keeper = actor.keeper
        self.config = state.config
        self.name = state.name
        self._now = state.clock.now
        self._sizer = sizer
        self._enabled = state.config.enabled
        self._default_ttl = state.config.ttl
        # The hit path's two references, held here to save an attribute lookup per hit: the
        # state's own entry map and the bound append of its access log (both live as long as
        # the state; the actor empties them in place, never replaces them).
        self._entries = state.entries
        self._log = state.log.append

    def __repr__(self) -> str:
        return f"<Layer {self.name!r} entries={len(self._entries)}>"

    @property
    def clock(self) -> LoopClock:
        """The loop clock the layer's deadlines are read on."""
        return self._state.clock

    # -- reads ---------------------------------------------------------------------------------
    #
    # get, get_nowait and get_or_load repeat the same few hit lines on purpose: a shared helper
    # would add a Python call (about 60 ns) to a hit that costs about 200 ns in all.

    @overload
    def get_nowait(self, key: str) -> Any: ...
    @overload
    def get_nowait(self, key: str, default: D) -> Any | D: ...
    def get_nowait(self, key: str, default: object = None) -> object:
        """The cached value for ``key``, or ``default`` on a miss. Never suspends."""
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):  # TypeError: an unhashable key, reported by _miss
            return self._miss(key, default)
        if entry.expires_at > self._now():
            fresh = entry.fresh_hits
            if not fresh:  # its first hit since the policy last heard of it: log it
                self._log(entry)
            entry.fresh_hits = fresh + 1
            return entry.value
        return self._miss(key, default)

    async def get(self, key: str, default: object = None) -> Any:
        """The cached value for ``key``, or ``default`` on a miss.

        A hit does not suspend (no checkpoint): it is a dictionary read on the loop's thread.
        """
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):
            return self._miss(key, default)
        if entry.expires_at > self._now():
            fresh = entry.fresh_hits
            if not fresh:
                self._log(entry)
            entry.fresh_hits = fresh + 1
            return entry.value
        return self._miss(key, default)

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> T:
        """The cached value for ``key``; on a miss, ``await loader()`` once and cache its result.

        Concurrent callers for the same missing key share one call of ``loader`` (single
        flight), which runs in the layer's own task group: a caller that is cancelled leaves
        without disturbing the others, and the load is cancelled only when every caller has
        left. A loader exception reaches every caller waiting at that moment (each its own
        copy) and is not cached. An invalidation, delete or write of the key during the load
        keeps its result out of the cache (the callers already waiting still receive it).
        """
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):
            return await self._load(key, loader, ttl, tags, size, cost)  # type: ignore[no-any-return]
        if entry.expires_at > self._now():
            fresh = entry.fresh_hits
            if not fresh:
                self._log(entry)
            entry.fresh_hits = fresh + 1
            return entry.value  # type: ignore[no-any-return]
        return await self._load(key, loader, ttl, tags, size, cost)  # type: ignore[no-any-return]

    async def lookup(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> Lookup[T]:
        """:meth:`get_or_load`, saying where the value came from: ``"hit"``, ``"loaded"``, or
        ``"stale"`` (the loader failed, and the layer's ``stale_if_error`` let an expired copy
        answer; ``error`` is the loader's exception). A loader that raises to hand a result back
        uncached, rather than to fail, sets ``stale_if_error = False`` on its exception class:
        such an exception is never answered with a stale copy."""
        entry = self._hit(key)
        if entry is not None:
            return Lookup(entry.value, "hit")
        load = self._join(key, loader, ttl, tags, size, cost)
        if load is None:  # a disabled layer: the loader ran in this task
            return Lookup(await await_loader(loader), "loaded")
        value = await load.wait()
        if load.stale_error is not None:
            return Lookup(value, "stale", load.stale_error)
        if load.found_elsewhere:
            self._state.found_elsewhere()
            return Lookup(value, "hit")
        return Lookup(value, "loaded")

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a live entry (not counted as a hit or a miss)."""
        entry = self._entries.get(key) if isinstance(key, str) else None
        if entry is None:
            self._check_open()
            return False
        return entry.expires_at > self._now()

    def ttl(self, key: str) -> float | None:
        """Seconds the live entry under ``key`` has left (None: it has no deadline). Not a hit.

        Raises :class:`KeyError` when ``key`` holds no live entry.
        """
        entry = self._entries.get(check_key(key))
        now = self._now()
        if entry is None or entry.expires_at <= now:
            self._check_open()
            raise KeyError(key)
        return None if entry.expires_at == NEVER else entry.expires_at - now

    def export(self) -> list[ExportedEntry]:
        """A snapshot of the live entries, with the TTL each has left (warm restarts)."""
        now = self._now()
        return [
            ExportedEntry(
                key=key,
                value=entry.value,
                ttl=None if entry.expires_at == NEVER else entry.expires_at - now,
                tags=entry.tags,
                cost=entry.cost,
                size=entry.size,
            )
            for key, entry in list(self._entries.items())
            if entry.expires_at > now
        ]

    def holds_expired(self, key: str) -> bool:
        """Whether ``key`` holds an entry past its deadline that is not removed yet."""
        entry = self._entries.get(key)
        return entry is not None and entry.expires_at <= self._now()

    def keys(self) -> list[str]:
        """The keys of the live entries (a snapshot; not counted as hits)."""
        now = self._now()
        return [key for key, entry in self._entries.items() if entry.expires_at > now]

    def peek(self, key: str, default: object = None) -> Any:
        """The live value under ``key`` without counting a hit or a miss, or ``default``."""
        entry = self._entries.get(check_key(key))
        return entry.value if entry is not None and entry.expires_at > self._now() else default

    def _hit(self, key: str) -> Entry | None:
        """The live entry under ``key``, its hit counted; None on a miss (not counted). The
        hot reads above repeat these lines instead of calling it (a call costs ~60 ns)."""
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):
            return None
        if entry.expires_at > self._now():
            fresh = entry.fresh_hits
            if not fresh:
                self._log(entry)
            entry.fresh_hits = fresh + 1
            return entry
        return None

    def _miss(self, key: object, default: object) -> object:
        check_key(key)  # only a miss pays for this: get(42) raises instead of missing forever
        self._check_open()
        state = self._state
        state.misses += 1
        if state.access_observers:
            self._log(key)
        return default

    def add_access_observer(self, observer: AccessObserver) -> Callable[[], None]:
        """Tell ``observer`` of every hit, miss and write, in order, as the layer's policy hears
        them (at each maintenance pass; see :class:`~rgruntime.runtime.layer_state.
        AccessObserver`). It costs the hit path nothing: hits are already logged for the
        policy; misses are logged only while an observer listens. Returns a function that
        removes it."""
        observers = self._state.access_observers
        observers.append(observer)

        def remove() -> None:
            if observer in observers:
                observers.remove(observer)

        return remove

    # -- writes --------------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> None:
        """Cache ``value`` under ``key``; the very next read sees it.

        ``ttl`` overrides the layer's default (seconds, or a string such as ``"5m"``), up to the
        layer's ``max_ttl``. ``tags`` are hierarchical (``products:electronics``). ``size`` is the
        entry's weight in bytes for ``max_size`` (default: :func:`rgruntime.estimate_size`).
        Suspends only when the layer's actor has fallen far behind (backpressure).
        """
        self.set_nowait(key, value, ttl=ttl, tags=tags, size=size, cost=cost)
        if self._state.writes_pending >= self.config.write_buffer_size:
            await self._actor.maintained()

    def set_nowait(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> None:
        """:meth:`set` without the backpressure: never suspends. A write that takes the layer
        over its bounds evicts before it returns."""
        self._check_open()
        key = check_key(key)
        entry = self._new_entry(key, value, ttl, check_tags(tags), size, cost)
        self._discard_load(key)
        if entry is not None:
            self._install(entry)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it held a live entry."""
        return self.delete_nowait(key)

    def delete_nowait(self, key: str, *, reason: Literal["deleted", "trimmed"] = "deleted") -> bool:
        """:meth:`delete`, never suspending.

        ``reason="trimmed"``: the caller drops the key to keep a group of keys within a bound of
        its own (capacity pressure, as an eviction: what was computed from it stays cached);
        removal listeners hear that reason instead of ``deleted``.
        """
        self._check_open()
        if reason not in ("deleted", "trimmed"):
            raise InvalidArgumentError("reason", reason, "'deleted' or 'trimmed'")
        return self._remove_local(check_key(key), reason)

    def _remove_local(self, key: str, reason: RemovalReason) -> bool:
        """Remove ``key`` from this process's map (and keep a load in flight out of it); True if
        it held a live entry. A remote layer's store is not told: its callers are."""
        self._discard_load(key)
        state = self._state
        if state.stale is not None:
            state.drop_stale(key)
        old = state.entries.pop(key, None)
        if old is None:
            return False
        state.retire(old)
        state.invalidations += 1
        self._post_write(old, None)
        if state.listeners:
            state.listeners.notify(key, reason)
        return old.expires_at > self._now()

    def add_removal_listener(self, listener: RemovalListener) -> Callable[[], None]:
        """Call ``listener(layer, key, reason)`` whenever a key leaves this layer.

        Reasons: ``expired``, ``evicted``, ``invalidated``, ``cleared``, ``deleted``,
        ``trimmed`` (see :meth:`delete_nowait`) and ``replaced`` (a write replaced the value
        under a key). The listener runs synchronously
        inside the layer's maintenance (or the caller's ``delete``): it must be quick and must
        not suspend. Its exceptions are logged and counted (``statistics().listener_failures``),
        never raised. Returns a function that unregisters it.
        """
        return self._state.listeners.add(listener)

    async def invalidate(
        self,
        *,
        key: str | None = None,
        keys: Iterable[str] | None = None,
        pattern: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> int:
        """Remove every entry matching any of the criteria; return how many live entries went.

        ``pattern`` is a case-sensitive glob on keys (``"weather_*"``); a literal prefix limits
        the search to the keys sharing it. ``tags`` are hierarchical: ``["products"]`` removes
        entries tagged ``products`` or ``products:...``, not ``productsX``. Loads in flight that
        match are kept out of the cache. However many entries it selects, the work is done in
        slices that never hold the event loop for more than a few milliseconds; when it
        returns, nothing it selected is served, and what was written meanwhile stays.
        """
        selection = Selection.of(key=key, keys=keys, pattern=pattern, tags=tags)
        return await self.invalidate_selection(selection)

    async def invalidate_selection(self, selection: Selection) -> int:
        """:meth:`invalidate` with the criteria already validated (used by the runtime)."""
        self._check_open()
        return await self._actor.invalidate(selection)

    async def clear(self) -> int:
        """Remove every entry; return how many live entries went."""
        self._check_open()
        return await self._actor.clear()

    async def _forget_all(self, reason: RemovalReason) -> int:
        """Remove every entry of this process's map for ``reason`` (a remote layer's store is
        not told)."""
        self._check_open()
        return await self._actor.clear(reason)

    async def cleanup(self) -> None:
        """Run a maintenance pass now: replay accesses and writes, expire, evict to the bounds."""
        self._check_open()
        await self._actor.maintained()

    # -- statistics ----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """What this layer did since the runtime opened (an immutable snapshot)."""
        state = self._state
        return CacheStats(
            hits=state.hits(),
            misses=state.misses,
            load_successes=state.load_successes,
            load_failures=state.load_failures,
            total_load_time=state.total_load_time,
            evictions=state.evictions,
            expirations=state.expirations,
            invalidations=state.invalidations,
            oversize_rejections=state.oversize_rejections,
            stale_served=state.stale_served,
            entries=len(state.entries),
            size_bytes=state.size_bytes,
            max_entries=self.config.max_entries,
            max_size=state.max_size,
        )

    def statistics(self) -> LayerStatistics:
        """The actor's internals: inbox depth, buffered records, loads in flight."""
        state = self._state
        keeper = self._keeper
        return LayerStatistics(
            name=self.name,
            inbox_depth=self._actor.inbox_depth(),
            pending_writes=state.writes_pending,
            loads_in_flight=len(state.loads),
            load_waiters=sum(load.waiters for load in state.loads.values()),
            timers=keeper.timer_count(),
            tags=keeper.tag_count(),
            maintenance_runs=keeper.maintenance_runs,
            second_chances=keeper.second_chances,
            ghost_hits=keeper.ghost_hits,
            budget_changes=keeper.budget_changes,
            policy_entries=keeper.policy_size(),
            removal_listeners=len(state.listeners),
            listener_failures=state.listeners.failures,
            pending_accesses=len(state.log) - state.writes_pending,
            stale_copies=0 if state.stale is None else len(state.stale),
            load_durations=tuple(state.load_durations),
        )

    # -- internals -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state.service is None:
            raise RuntimeClosedError(f"the runtime of cache layer {self.name!r} is not open")

    def _resolve_ttl(self, ttl: float | str | None) -> float | None:
        if ttl is None:
            return self._default_ttl
        seconds = parse_duration(ttl, field="ttl", error=InvalidArgumentError)
        max_ttl = self.config.max_ttl
        if max_ttl is not None and seconds > max_ttl:
            raise InvalidArgumentError(
                "ttl", ttl, f"at most the {self.name!r} layer's max_ttl ({max_ttl:g} s)"
            )
        return seconds

    def _new_entry(
        self,
        key: str,
        value: Any,
        ttl: float | str | None,
        tags: frozenset[str],
        size: int | None,
        cost: float | None,
    ) -> Entry | None:
        """Validate a write and build its entry; None when the layer stores nothing."""
        seconds = self._resolve_ttl(ttl)
        weight = weigh(key, value, size, self._sizer)
        price = self._default_cost() if cost is None else check_cost(cost)
        if not self._enabled:
            return None
        max_size = self._state.max_size
        if max_size is not None and weight > max_size:
            # It could never fit: storing it would evict everything else first, then itself.
            self._state.oversize_rejections += 1
            self._remove_local(key, "deleted")
            return None
        expires_at = NEVER if seconds is None else self._now() + seconds
        return Entry(key, value, expires_at, seconds, weight, tags, price)

    def _default_cost(self) -> float:
        """A write's cost when none is given: the layer's mean load time so far, else 1.0."""
        state = self._state
        loads = state.load_successes
        return state.total_load_time / loads if loads and state.total_load_time > 0 else 1.0

    def _install(self, entry: Entry) -> None:
        state = self._state
        old = state.entries.get(entry.key)
        if not self.config.evictable:
            self._check_room(entry, old)
        state.entries[entry.key] = entry
        state.size_bytes += entry.size
        if old is not None:
            state.retire(old)
        if state.stale is not None:
            state.drop_stale(entry.key)
        self._post_write(old, entry)
        if old is not None and state.listeners:
            state.listeners.notify(entry.key, "replaced")

    def _check_room(self, entry: Entry, old: Entry | None) -> None:
        """A layer that never evicts refuses a write that does not fit (after expiring)."""
        state = self._state
        freed = 0 if old is None else old.size
        max_size, max_entries = state.max_size, self.config.max_entries
        for attempt in range(2):
            if max_size is not None and state.size_bytes - freed + entry.size > max_size:
                bound, needed, held, budget = (
                    "max_size",
                    entry.size - freed,
                    state.size_bytes,
                    max_size,
                )
            elif old is None and max_entries is not None and len(state.entries) >= max_entries:
                bound, needed, held, budget = "max_entries", 1, len(state.entries), max_entries
            else:
                return
            if attempt == 0:
                self._keeper.maintain()  # what has expired makes room first
        raise CapacityError(self.name, needed, held, budget, bound)

    def _post_write(self, old: Entry | None, new: Entry | None) -> None:
        state = self._state
        self._log((old, new))
        state.writes_pending += 1
        keeper = self._keeper
        # Over a bound: evict now, so the layer is within its budget at the writer's next
        # await (the pass is synchronous; the actor would run the same one a moment later).
        # When that pass left expiry behind, the actor carries on with it in slices.
        if not keeper.over_bounds() or keeper.maintain():
            self._actor.wake()

    def _discard_load(self, key: str) -> None:
        load = self._state.loads.get(key)
        if load is not None:
            load.discarded = True
            load.detach()

    async def _load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | str | None,
        tags: Iterable[str],
        size: int | None,
        cost: float | None,
    ) -> Any:
        load = self._join(key, loader, ttl, tags, size, cost)
        if load is None:  # a disabled layer: nothing is stored, the loader runs here
            return await await_loader(loader)
        value = await load.wait()
        if load.found_elsewhere:
            self._state.found_elsewhere()
        return value

    def _join(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | str | None,
        tags: Iterable[str],
        size: int | None,
        cost: float | None,
    ) -> Load | None:
        """Check a load's arguments, count the miss, and join (or start) the key's load."""
        self._check_open()
        key = check_key(key)
        check_loader(loader)
        checked_tags = check_tags(tags)
        seconds = self._resolve_ttl(ttl)
        if size is not None:
            check_size(size)
        if cost is not None:
            check_cost(cost)
        state = self._state
        state.misses += 1  # after the checks: a call refused for bad input is not a miss
        if state.access_observers:
            self._log(key)
        if not self._enabled:
            return None
        load = state.loads.get(key)
        if load is None:
            load = Load(self.name, key, loader, seconds, checked_tags, state.loads)
            assert state.service is not None
            state.service.start_soon(
                self._run_load, load, size, cost, name=f"load {self.name}:{key[:100]}"
            )
        return load

    async def _run_load(self, load: Load, size: int | None, cost: float | None) -> None:
        """Run one load in the service task group. Whatever the loader, the value or the sizer
        raise reaches the load's waiters, never the task group: the layer keeps serving."""
        current_load.set(load)  # this task's own context: marks the loader's calls as nested
        state = self._state
        started = self._now()
        try:
            with load.scope:
                try:
                    value, price = await self._produce(load, cost)
                except anyio.get_cancelled_exc_class():
                    if anyio.current_effective_deadline() == -math.inf:
                        raise  # ours: its last waiter left, or the runtime is closing
                    # A cancellation no scope of ours caused (asyncio: the loader awaited a
                    # future someone else cancelled): this load failed, the layer goes on.
                    self._load_failed(load, started, LoadInterruptedError(self.name, load.key))
                    return
                except Unstorable as unstorable:  # loaded, but the value cannot be kept
                    load.finish(error=unstorable.error)
                    return
                except BaseException as error:  # every failure goes to its waiters only
                    self._load_failed(load, started, error)
                    return
                if not load.discarded and state.service is not None:
                    try:
                        self._keep_loaded(load, value, size, price)
                    except Exception as error:  # a value that cannot be sized or stored
                        load.finish(error=error)
                        return
                load.finish(value)
        finally:
            if not load.done.is_set():
                # Cancelled: by its last waiter leaving (nobody is told) or by the runtime closing.
                load.finish(error=RuntimeClosedError(f"layer {self.name!r} closed during a load"))

    async def _produce(self, load: Load, cost: float | None) -> tuple[Any, float]:
        """Run the load's loader: its value, and what recomputing it costs (``cost``, else the
        time it took). A remote layer looks in its store first (and takes the key's lease)."""
        started = self._now()
        value = await await_loader(load.loader)
        elapsed = self._now() - started
        self._state.record_load(elapsed, failed=False)
        if self._keeper.evicted_recently(load.key):
            self._keeper.record_ghost_load(elapsed)  # what a larger budget would save
        return value, cost if cost is not None else max(elapsed, _MIN_COST)

    def _keep_loaded(self, load: Load, value: Any, size: int | None, cost: float) -> None:
        """Cache what a load produced (it may raise: the load's waiters get the error)."""
        entry = self._new_entry(load.key, value, load.ttl, load.tags, size, cost)
        if entry is not None:
            self._install(entry)

    def _load_failed(self, load: Load, started: float, error: BaseException) -> None:
        state = self._state
        now = self._now()
        state.record_load(now - started, failed=True)
        stale = None
        if (
            state.stale is not None
            and isinstance(error, Exception)
            and getattr(error, "stale_if_error", True)
            and not load.discarded
        ):
            stale = state.stale.usable(load.key, now)
        if stale is None:
            load.finish(error=error)
            return
        # Stale-if-error: the reload failed, the expired copy answers (marked stale).
        state.stale_served += 1
        load.stale_error = error
        load.finish(stale.value)


class Unstorable(Exception):
    """Raised by :meth:`Layer._produce` when the loader succeeded but its value cannot be kept
    (a remote layer cannot encode it): ``error`` goes to the waiters as it is, and the load does
    not count as failed (nor is it answered with a stale copy)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class SlidingLayer(Layer):
    """A layer whose hits restart the entry's TTL (``sliding_ttl=True``).

    Its reads go through one more method call than :class:`Layer`'s, so that layers without a
    sliding TTL do not pay for moving deadlines on every hit.
    """

    def _hit(self, key: str) -> Entry | None:
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):
            return None
        now = self._now()
        if entry.expires_at > now:
            fresh = entry.fresh_hits
            if not fresh:
                self._log(entry)
            entry.fresh_hits = fresh + 1
            if entry.ttl is not None:
                entry.expires_at = now + entry.ttl
            return entry
        return None

    def get_nowait(self, key: str, default: object = None) -> object:
        entry = self._hit(key)
        if entry is None:
            return self._miss(key, default)
        return entry.value

    async def get(self, key: str, default: object = None) -> Any:
        return self.get_nowait(key, default)

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> T:
        entry = self._hit(key)
        if entry is None:
            return await self._load(key, loader, ttl, tags, size, cost)  # type: ignore[no-any-return]
        return entry.value  # type: ignore[no-any-return]


def layer_class(config: LayerConfig) -> type[Layer]:
    """The layer class whose read path fits ``config``."""
    return SlidingLayer if config.sliding_ttl else Layer


def new_layer(
    config: LayerConfig, clock: LoopClock, sizer: Callable[[Any], int] = estimate_size
) -> tuple[Layer, LayerActor]:
    """A layer and its actor, sharing one state (the supervisor starts the actor).

    ``sizer`` weighs values written without an explicit ``size`` (bytes); if it raises, the
    write fails with :class:`~rgruntime.InvalidArgumentError` naming ``size``.
    """
    state = LayerState(config, clock)
    actor = LayerActor(state)
    return layer_class(config)(state, actor, sizer), actor
