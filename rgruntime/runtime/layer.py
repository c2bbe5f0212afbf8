"""A cache layer's public face and its data path.

The caller's task does the cheap, latency-critical part itself (DESIGN.md section 3):

- a **hit** reads the entry map, checks the deadline against the loop's clock and counts itself
  on the entry (``entry.hits += 1``): no task switch, no channel send, no buffer. The actor reads
  those counters when it picks eviction victims (an entry hit since its last look gets a second
  chance), so a hit never has to be replayed;
- a **write** replaces the map entry at once (the next read sees it) and appends a lossless write
  record for the actor;
- a **miss with a loader** starts or joins a single-flight load in the layer's service task group.

Everything that orders, indexes, expires or evicts belongs to the layer's actor
(:mod:`rgruntime.runtime.layer_actor`), which replays the buffers in batches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, TypeVar, overload

import anyio
import anyio.abc

from rgruntime.config import LayerConfig
from rgruntime.errors import InvalidArgumentError, RuntimeClosedError
from rgruntime.runtime.arguments import Selection, check_cost, check_key, check_size, check_tags
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.entry import NEVER, Entry
from rgruntime.runtime.loads import Load, current_load
from rgruntime.runtime.removals import RemovalListener, RemovalListeners
from rgruntime.runtime.stats import CacheStats, LayerStatistics
from rgruntime.sizing import estimate_size
from rgruntime.units import parse_duration

if TYPE_CHECKING:
    from rgruntime.runtime.layer_actor import LayerActor

__all__ = ["Layer", "SlidingLayer", "layer_class"]

#: The least cost a load is given: a load that took no measurable time still cost something.
_MIN_COST: Final = 1e-6

T = TypeVar("T")
D = TypeVar("D")

#: A write record: the entry a write replaced (if any) and the entry it installed (None: delete).
WriteRecord = tuple[Entry | None, Entry | None]


class _ClosedEntries:
    """Stands in for the entry map once the runtime is closed, so that the hit path needs no
    "is it open?" test of its own: its one lookup raises instead."""

    __slots__ = ("_layer",)

    def __init__(self, layer: str) -> None:
        self._layer = layer

    def __getitem__(self, key: object) -> NoReturn:
        raise RuntimeClosedError(f"the runtime of cache layer {self._layer!r} is closed")

    get = __getitem__

    def __len__(self) -> int:
        return 0

    def values(self) -> tuple[()]:
        return ()


class Layer:
    """One named cache layer (``response``, ``session``, ``model``, ``tool``, ``memory``...).

    Obtain it from ``runtime.layer(name)``. Every method must be called from the event loop
    thread of the runtime that owns the layer. Keys are strings; values are any Python object
    (``None`` included: pass ``default=MISSING`` to tell a cached ``None`` from a miss).
    """

    def __init__(
        self,
        config: LayerConfig,
        clock: LoopClock,
        sizer: Callable[[Any], int] = estimate_size,
    ) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock
        self._now = clock.now
        self._sizer = sizer
        self._enabled = config.enabled
        self._default_ttl = config.ttl
        self._entries: dict[str, Entry] = {}
        # Hits since the last maintenance pass (entries, in access order), and writes since then.
        self._writes: list[WriteRecord] = []
        self._write_limit = config.write_buffer_size
        self._loads: dict[str, Load] = {}
        self._actor: LayerActor | None = None
        self._service: anyio.abc.TaskGroup | None = None
        # Counted on the caller's side. Hits are counted by each entry (``entry.hits``): a layer
        # total would cost one more attribute write per hit. Entries that leave the map hand
        # their count over to ``_retired_hits``.
        self._misses = 0
        self._retired_hits = 0
        self._load_successes = 0
        self._load_failures = 0
        self._total_load_time = 0.0
        self._oversize_rejections = 0
        # Who else keeps state about this layer's keys (semantic index, dependencies, events).
        self._removal_listeners = RemovalListeners(self.name)

    def __repr__(self) -> str:
        return f"<Layer {self.name!r} entries={len(self._entries)}>"

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
        except KeyError:
            check_key(key)  # only a miss pays for this: get(42) raises instead of missing forever
            self._misses += 1
            return default
        if entry.expires_at > self._now():
            entry.hits += 1
            return entry.value
        self._misses += 1
        return default

    async def get(self, key: str, default: object = None) -> Any:
        """The cached value for ``key``, or ``default`` on a miss.

        A hit does not suspend (no checkpoint): it is a dictionary read on the loop's thread.
        """
        try:
            entry = self._entries[key]
        except KeyError:
            check_key(key)  # only a miss pays for this: get(42) raises instead of missing forever
            self._misses += 1
            return default
        if entry.expires_at > self._now():
            entry.hits += 1
            return entry.value
        self._misses += 1
        return default

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
        left. A loader exception reaches every caller waiting at that moment and is not cached.
        An invalidation, delete or write of the key during the load keeps its result out of
        the cache (the callers already waiting still receive it).
        """
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > self._now():
            entry.hits += 1
            return entry.value  # type: ignore[no-any-return]
        return await self._load(key, loader, ttl, tags, size, cost)  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a live entry (not counted as a hit or a miss)."""
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and entry.expires_at > self._now()

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
        if len(self._writes) >= self._write_limit:
            await self._require_actor().maintained()

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
        """:meth:`set` without the backpressure: never suspends."""
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
        key = check_key(key)
        self._discard_load(key)
        old = self._entries.pop(key, None)
        if old is None:
            return False
        self._retired_hits += old.hits
        self._post_write((old, None))
        if self._removal_listeners:
            self._removal_listeners.notify(key, reason)
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
        return self._removal_listeners.add(listener)

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
        match are kept out of the cache.
        """
        selection = Selection.of(key=key, keys=keys, pattern=pattern, tags=tags)
        return await self.invalidate_selection(selection)

    async def invalidate_selection(self, selection: Selection) -> int:
        """:meth:`invalidate` with the criteria already validated (used by the runtime)."""
        self._check_open()
        return await self._require_actor().invalidate(selection)

    async def clear(self) -> int:
        """Remove every entry; return how many live entries went."""
        self._check_open()
        return await self._require_actor().clear()

    async def cleanup(self) -> None:
        """Run a maintenance pass now: replay accesses and writes, expire, evict to the bounds."""
        self._check_open()
        await self._require_actor().maintained()

    # -- statistics ----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """What this layer did since the runtime opened (an immutable snapshot)."""
        actor = self._require_actor()
        return CacheStats(
            hits=self._retired_hits + sum(entry.hits for entry in self._entries.values()),
            misses=self._misses,
            load_successes=self._load_successes,
            load_failures=self._load_failures,
            total_load_time=self._total_load_time,
            evictions=actor.evictions,
            expirations=actor.expirations,
            invalidations=actor.invalidations,
            oversize_rejections=self._oversize_rejections,
            entries=len(self._entries),
            size_bytes=actor.size_bytes,
            max_entries=self.config.max_entries,
            max_size=actor.max_size,
        )

    def statistics(self) -> LayerStatistics:
        """The actor's internals: inbox depth, buffered records, loads in flight."""
        actor = self._require_actor()
        return LayerStatistics(
            name=self.name,
            inbox_depth=actor.inbox_depth(),
            pending_writes=len(self._writes),
            loads_in_flight=len(self._loads),
            load_waiters=sum(load.waiters for load in self._loads.values()),
            timers=actor.timer_count(),
            tags=actor.tag_count(),
            maintenance_runs=actor.maintenance_runs,
            second_chances=actor.second_chances,
            ghost_hits=actor.ghost_hits,
            budget_changes=actor.budget_changes,
            policy_entries=actor.policy_size(),
            removal_listeners=len(self._removal_listeners),
            listener_failures=self._removal_listeners.failures,
        )

    # -- internals -------------------------------------------------------------------------------

    def _attach(self, actor: LayerActor, service: anyio.abc.TaskGroup) -> None:
        self._actor = actor
        self._service = service

    def _close(self) -> None:
        # The entries' hit counts outlive them, so that stats() still adds up after the runtime.
        self._retired_hits += sum(entry.hits for entry in self._entries.values())
        self._entries = _ClosedEntries(self.name)  # type: ignore[assignment]
        self._service = None

    def _check_open(self) -> None:
        if self._service is None:
            raise RuntimeClosedError(f"the runtime of cache layer {self.name!r} is not open")

    def _require_actor(self) -> LayerActor:
        if self._actor is None:
            raise RuntimeClosedError(f"cache layer {self.name!r} has not been started")
        return self._actor

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
        weight = self._sizer(value) if size is None else check_size(size)
        price = self._default_cost() if cost is None else check_cost(cost)
        if not self._enabled:
            return None
        max_size = self._actor.max_size if self._actor is not None else self.config.max_size
        if max_size is not None and weight > max_size:
            # It could never fit: storing it would evict everything else first, then itself.
            self._oversize_rejections += 1
            self.delete_nowait(key)
            return None
        expires_at = NEVER if seconds is None else self._now() + seconds
        return Entry(key, value, expires_at, seconds, weight, tags, price)

    def _default_cost(self) -> float:
        """A write's cost when none is given: the layer's mean load time so far, else 1.0."""
        loads = self._load_successes
        return self._total_load_time / loads if loads and self._total_load_time > 0 else 1.0

    def _install(self, entry: Entry) -> None:
        old = self._entries.get(entry.key)
        self._entries[entry.key] = entry
        if old is not None:
            self._retired_hits += old.hits
        self._post_write((old, entry))
        if old is not None and self._removal_listeners:
            self._removal_listeners.notify(entry.key, "replaced")

    def _post_write(self, record: WriteRecord) -> None:
        self._writes.append(record)
        self._require_actor().request_maintenance()

    def _discard_load(self, key: str) -> None:
        load = self._loads.get(key)
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
        self._check_open()
        key = check_key(key)
        if not callable(loader):
            raise InvalidArgumentError("loader", loader, "an async callable taking no arguments")
        checked_tags = check_tags(tags)
        seconds = self._resolve_ttl(ttl)
        if size is not None:
            check_size(size)
        if cost is not None:
            check_cost(cost)
        self._misses += 1  # after the checks: a call refused for bad input is not a miss
        if not self._enabled:
            return await loader()
        load = self._loads.get(key)
        if load is None:
            load = Load(self.name, key, loader, seconds, checked_tags, self._loads)
            assert self._service is not None
            self._service.start_soon(
                self._run_load, load, size, cost, name=f"load {self.name}:{key}"
            )
        return await load.wait()

    async def _run_load(self, load: Load, size: int | None, cost: float | None) -> None:
        current_load.set(load)  # this task's own context: marks the loader's calls as nested
        started = self._now()
        try:
            with load.scope:
                try:
                    value = await load.loader()
                except Exception as error:  # the loader's failure goes to its waiters only
                    self._load_failures += 1
                    self._total_load_time += self._now() - started
                    load.finish(error=error)
                    return
                self._load_successes += 1
                elapsed = self._now() - started
                self._total_load_time += elapsed
                actor = self._actor
                if actor is not None and actor.evicted_recently(load.key):
                    actor.record_ghost_load(elapsed)  # what a larger budget would have saved
                if not load.discarded and self._service is not None:
                    # Unless told otherwise, what the load took is what recomputing will cost.
                    price = cost if cost is not None else max(elapsed, _MIN_COST)
                    entry = self._new_entry(load.key, value, load.ttl, load.tags, size, price)
                    if entry is not None:
                        self._install(entry)
                load.finish(value)
        finally:
            if not load.done.is_set():
                # Cancelled: by its last waiter leaving (nobody is told) or by the runtime closing.
                load.finish(error=RuntimeClosedError(f"layer {self.name!r} closed during a load"))


class SlidingLayer(Layer):
    """A layer whose hits restart the entry's TTL (``sliding_ttl=True``).

    Its reads go through one more method call than :class:`Layer`'s, so that layers without a
    sliding TTL do not pay for moving deadlines on every hit.
    """

    def _hit(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            now = self._now()
            if entry.expires_at > now:
                entry.hits += 1
                if entry.ttl is not None:
                    entry.expires_at = now + entry.ttl
                return entry
        return None

    def get_nowait(self, key: str, default: object = None) -> object:
        entry = self._hit(key)
        if entry is None:
            check_key(key)
            self._misses += 1
            return default
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
