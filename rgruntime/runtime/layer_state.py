"""The state one cache layer's two ends share: its public face and its actor.

As anyio's memory streams share one state object between their send and receive ends, a
:class:`~rgruntime.runtime.layer.Layer` (what callers hold) and its
:class:`~rgruntime.runtime.layer_actor.LayerActor` (the task that orders, expires and evicts)
share one :class:`LayerState`. Neither reaches into the other: what both touch lives here, with
who writes it said beside each field. Everything runs on the event loop's one thread, and no
step that touches it suspends halfway, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import anyio.abc

from rgruntime.config import LayerConfig
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.entry import Entry
from rgruntime.runtime.removals import RemovalListeners
from rgruntime.runtime.stale import StaleCopies

if TYPE_CHECKING:
    from rgruntime.runtime.loads import Load

__all__ = ["LOAD_DURATION_BOUNDS", "AccessLog", "AccessObserver", "LayerState", "WriteRecord"]

#: Upper bounds (seconds) of the load-duration histogram's buckets: a tool call or a memory
#: lookup takes milliseconds, a model call seconds. The last count is for longer loads.
LOAD_DURATION_BOUNDS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

#: A write: the entry it replaced (if any) and the entry it installed (None: a delete).
WriteRecord: TypeAlias = tuple[Entry | None, Entry | None]

#: What happened to the layer since the actor last looked, in order: an ``Entry`` is its first
#: hit since then (its further hits are counted on the entry), a ``WriteRecord`` a write, a
#: ``str`` a miss on that key (logged only while an access observer listens).
AccessLog: TypeAlias = list[Any]


class AccessObserver(Protocol):
    """Told of every access the layer's policy hears, when the keeper replays the log
    (``layer.add_access_observer``): for samplers such as miss-ratio curves. Synchronous and
    quick; it must not raise (a failure is logged and the observer dropped)."""

    def hit(self, key: str, count: int) -> None:
        """``key`` was hit ``count`` times (its first hit since the last pass, and the rest)."""

    def miss(self, key: str) -> None:
        """A lookup of ``key`` missed."""

    def write(self, key: str, size: int) -> None:
        """``key`` was written with an entry of ``size`` bytes."""


class LayerState:
    """What a layer's face and its actor both touch (see the module documentation)."""

    __slots__ = (
        "access_observers",
        "clock",
        "config",
        "entries",
        "evictions",
        "expirations",
        "invalidations",
        "listeners",
        "load_durations",
        "load_failures",
        "load_successes",
        "loads",
        "log",
        "max_size",
        "misses",
        "name",
        "oversize_rejections",
        "remote_hits",
        "retired_hits",
        "service",
        "size_bytes",
        "stale",
        "stale_served",
        "total_load_time",
        "writes_pending",
    )

    def __init__(self, config: LayerConfig, clock: LoopClock) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock
        #: key -> live entry. Written by the face (writes, deletes) and the actor (removals).
        self.entries: dict[str, Entry] = {}
        #: The ordered access log (first hits and writes) that the actor replays into its policy.
        #: Appended by the face, drained by the actor's maintenance pass.
        self.log: AccessLog = []
        #: Write records in ``log`` not yet replayed (the face's backpressure reads it).
        self.writes_pending = 0
        #: Bytes of the entries in the map, counted when a write lands (face) and when an entry
        #: leaves (face's delete, actor's removals): at any moment, what the map holds.
        self.size_bytes = 0
        #: The byte budget now: the configured one, moved by the supervisor's rebalancing.
        self.max_size: int | None = config.max_size
        #: Single-flight loads in flight, by key (see rgruntime.runtime.loads).
        self.loads: dict[str, Load] = {}
        #: The actor's task group for loads while the layer runs; None before and after.
        self.service: anyio.abc.TaskGroup | None = None
        #: Who else keeps state about the layer's keys (semantic index, dependencies, events).
        self.listeners = RemovalListeners(config.name)
        #: Expired entries kept for stale-if-error (None when the layer keeps none).
        grace = config.stale_if_error
        self.stale: StaleCopies | None = StaleCopies(grace) if grace else None
        #: Loads that failed and were answered with a stale copy.
        self.stale_served = 0
        #: Who samples the accesses the policy hears (analysis); misses are logged only then.
        self.access_observers: list[AccessObserver] = []
        # Counters. Hits are counted on each entry (``entry.hits + entry.fresh_hits``): a layer
        # total would cost one more attribute write per hit; entries that leave hand their count
        # to ``retired_hits``.
        self.retired_hits = 0
        #: Near-cache misses answered by the remote store (a remote layer's hits on the server).
        self.remote_hits = 0
        self.misses = 0
        self.load_successes = 0
        self.load_failures = 0
        self.total_load_time = 0.0
        #: Loads by duration: one count per bucket of LOAD_DURATION_BOUNDS, then the longer ones.
        self.load_durations = [0] * (len(LOAD_DURATION_BOUNDS) + 1)
        self.oversize_rejections = 0
        self.evictions = 0
        self.expirations = 0
        self.invalidations = 0

    @property
    def is_open(self) -> bool:
        return self.service is not None

    def hits(self) -> int:
        """Every hit so far: the live entries' counts plus those of entries that left, plus
        what a remote layer's store answered."""
        return (
            self.retired_hits
            + self.remote_hits
            + sum(entry.hits + entry.fresh_hits for entry in self.entries.values())
        )

    def retire(self, entry: Entry) -> None:
        """``entry`` left the map: keep its hits and stop counting its bytes."""
        self.retired_hits += entry.hits + entry.fresh_hits
        self.size_bytes -= entry.size

    def found_elsewhere(self) -> None:
        """A lookup counted as a miss of the near cache was answered by the remote store."""
        self.misses -= 1
        self.remote_hits += 1

    def record_load(self, seconds: float, *, failed: bool) -> None:
        """A load finished after ``seconds`` (on the miss path only: never on a hit)."""
        if failed:
            self.load_failures += 1
        else:
            self.load_successes += 1
        self.total_load_time += seconds
        self.load_durations[bisect_left(LOAD_DURATION_BOUNDS, seconds)] += 1

    def drop_stale(self, key: str) -> None:
        """``key`` changed: its stale copy, if any, must never answer again."""
        if self.stale is not None:
            self.size_bytes -= self.stale.drop(key)

    def close(self) -> None:
        """The layer stopped: its entries go (their hit counts stay, for ``stats()``)."""
        self.retired_hits = self.hits() - self.remote_hits
        if self.stale is not None:
            self.stale.clear()
        self.entries.clear()
        self.log.clear()
        self.writes_pending = 0
        self.size_bytes = 0
        self.service = None
