"""Immutable statistics records: what a layer did (``stats``) and how its actor is doing
(``statistics``, after trio's naming)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = ["CacheStats", "LayerStatistics", "StoreHealth"]


@attrs.frozen(kw_only=True)
class CacheStats:
    """Counters of one layer, or of a whole runtime (then ``layers`` holds each layer's).

    ``hit_rate`` and ``miss_rate`` are percentages (0-100) of ``requests``, as the caching guide
    prints them (``f"Hit rate: {stats.hit_rate}%"``). Times are seconds of the event loop's clock.
    """

    hits: int = 0
    misses: int = 0
    load_successes: int = 0
    load_failures: int = 0
    total_load_time: float = 0.0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    oversize_rejections: int = 0
    #: Loads that failed and were answered with an expired copy (the layer's stale_if_error).
    stale_served: int = 0
    entries: int = 0
    size_bytes: int = 0
    max_entries: int | None = None
    max_size: int | None = None
    layers: Mapping[str, CacheStats] = attrs.field(factory=dict, repr=False)

    @property
    def requests(self) -> int:
        """Lookups answered: hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits as a percentage of requests (0.0 when there was none)."""
        return 100.0 * self.hits / self.requests if self.requests else 0.0

    @property
    def miss_rate(self) -> float:
        """Misses as a percentage of requests (0.0 when there was none)."""
        return 100.0 * self.misses / self.requests if self.requests else 0.0

    @property
    def average_load_time(self) -> float:
        """Mean seconds per finished load."""
        loads = self.load_successes + self.load_failures
        return self.total_load_time / loads if loads else 0.0

    # The caching guide's names for three of the counters.
    @property
    def entry_count(self) -> int:
        return self.entries

    @property
    def eviction_count(self) -> int:
        return self.evictions

    @property
    def memory_usage(self) -> int:
        return self.size_bytes

    def as_dict(self) -> dict[str, Any]:
        """Every counter and rate, JSON-ready (per-layer records nested under ``layers``)."""
        record = attrs.asdict(self, recurse=False, filter=lambda field, _: field.name != "layers")
        record.update(hit_rate=self.hit_rate, miss_rate=self.miss_rate, requests=self.requests)
        if self.layers:
            record["layers"] = {name: stats.as_dict() for name, stats in self.layers.items()}
        return record

    @classmethod
    def combine(cls, layers: Mapping[str, CacheStats]) -> CacheStats:
        """The runtime-wide record: counters summed, bounds summed where every layer has one."""

        def total(values: Iterable[int | None]) -> int | None:
            values = list(values)
            return None if any(v is None for v in values) else sum(v or 0 for v in values)

        summed = {
            field.name: sum(getattr(stats, field.name) for stats in layers.values())
            for field in attrs.fields(cls)
            if field.name not in ("layers", "max_entries", "max_size")
        }
        return cls(
            **summed,
            max_entries=total(s.max_entries for s in layers.values()),
            max_size=total(s.max_size for s in layers.values()),
            layers=dict(layers),
        )


@attrs.frozen(kw_only=True)
class LayerStatistics:
    """The actor's internals, for debugging and tuning (not a stable metric set)."""

    name: str
    inbox_depth: int
    pending_writes: int
    loads_in_flight: int
    load_waiters: int
    timers: int
    tags: int
    maintenance_runs: int
    second_chances: int
    #: Loads of keys evicted recently: misses a larger budget would have avoided.
    ghost_hits: int
    #: How many times the supervisor moved this layer's byte budget.
    budget_changes: int
    policy_entries: int
    #: Removal listeners registered, and how many times one of them raised (logged, not raised).
    removal_listeners: int
    listener_failures: int
    #: First hits logged for the policy and not yet replayed (the access log's reads).
    pending_accesses: int = 0
    #: Expired entries kept for stale-if-error.
    stale_copies: int = 0
    #: Loads by duration: one count per bucket of ``LOAD_DURATION_BOUNDS`` (seconds,
    #: rgruntime.runtime.layer_state), then the longer ones.
    load_durations: tuple[int, ...] = ()
    #: A remote layer's store: its health and the writes waiting for it (None: in-process).
    store: StoreHealth | None = None


@attrs.frozen(kw_only=True)
class StoreHealth:
    """How a remote layer's store is doing (``layer.statistics().store``)."""

    #: ``"redis"``, ``"redis_cluster"``, ``"memcached"`` or ``"memory"``.
    kind: str
    #: ``"ok"``, or ``"down"`` while the breaker refuses calls (``"probing"``: one is trying).
    state: Literal["ok", "down", "probing"]
    #: Whether other processes' invalidations reach this one (the store's channel is live).
    coherent: bool
    #: Calls that failed, and the last failure's message.
    errors: int
    last_error: str
    #: Times the breaker opened.
    outages: int
    #: Near-cache misses the server answered.
    remote_hits: int
    #: Payloads read from the server that could not be trusted (counted as misses).
    undecodable: int
    #: Writes waiting for the server now; kept because it was away; written back since; dropped
    #: because more than ``write_back_limit`` were waiting.
    pending_writes: int
    kept_during_outage: int
    written_back: int
    write_back_dropped: int
    #: Invalidations and clears waiting for the server (it was away when they were made).
    kept_removals: int = 0
    #: Writes the server refused (a value it will not take: too large for Memcached...):
    #: raised to the caller of ``set``, or dropped from the writes waiting, never retried.
    refused_writes: int = 0
    #: Removed entries whose dependents on the server wait to be looked up (the removal was
    #: made while the server was away, or it went away mid-cascade); dropped because more than
    #: ``write_back_limit`` were waiting (what depended on them lives out its TTL).
    kept_cascades: int = 0
    cascades_dropped: int = 0
