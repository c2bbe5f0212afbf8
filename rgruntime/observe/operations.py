"""Operations over a running runtime: analysis, diagnosis, stale entries, memory.

:class:`Operations` attaches a :class:`~rgruntime.observe.monitor.LayerMonitor` to every layer
of a runtime (layers added later are attached when next asked about) and answers from them. The
layers' keys are fed to the key-variance detector as the texts requested, except the keys of
the client's five layers, which are hashes (the client feeds the goals and queries instead:
:meth:`note_request`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from rgruntime.config import BUILTIN_LAYERS
from rgruntime.errors import InvalidArgumentError
from rgruntime.observe.analysis import DEFAULT_TARGET, Analysis, analyze_layer, combine
from rgruntime.observe.diagnosis import Cause, Diagnosis, diagnosis_of, variance_cause
from rgruntime.observe.figures import Bytes, Seconds
from rgruntime.observe.monitor import LayerMonitor
from rgruntime.observe.recommend import recommended_size, recommended_ttl
from rgruntime.observe.shards import sizes_between
from rgruntime.observe.variance import KeyVariance
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.runtime import Runtime
from rgruntime.units import parse_duration

__all__ = ["LargeEntry", "MemoryUsage", "Operations", "StaleEntry"]

#: How many of the largest entries ``memory_usage`` lists.
LARGEST: Final = 10


@attrs.frozen(kw_only=True)
class StaleEntry:
    """An entry older than ``find_stale``'s ``max_age``."""

    key: str
    layer: str
    age: Seconds
    ttl_left: Seconds | None  # None: no deadline
    size: Bytes
    hits: int

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class LargeEntry:
    key: str
    layer: str
    size: Bytes

    def __str__(self) -> str:
        return f"{self.layer}:{self.key} ({self.size})"

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class _Entries(tuple[LargeEntry, ...]):
    """The largest entries; prints as a readable list."""

    def __str__(self) -> str:
        return "[" + ", ".join(str(entry) for entry in self) + "]"


@attrs.frozen(kw_only=True)
class MemoryUsage:
    """``client.cache.memory_usage()``: bytes held, bytes left under the budget (None:
    unbounded), the largest entries, each layer's figures in ``layers``."""

    used: Bytes
    available: Bytes | None
    max_size: Bytes | None
    entries: int
    largest_entries: tuple[LargeEntry, ...]
    layers: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "available": self.available,
            "max_size": self.max_size,
            "entries": self.entries,
            "largest_entries": [entry.as_dict() for entry in self.largest_entries],
            "layers": self.layers,
        }


class Operations:
    """Analysis and diagnosis of a runtime's layers (see the module documentation).

    ``clock`` times how long the monitors have listened (the per-hour figures); ``usd_per_hit``
    gives, per layer, the dollars one hit saved on average (None: unknown).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        hashed_layers: Iterable[str] = BUILTIN_LAYERS,
        usd_per_hit: Callable[[str], float | None] = lambda layer: None,
        on_activity: Callable[[], None] | None = None,
    ) -> None:
        self._on_activity = on_activity
        self._runtime = runtime
        self._hashed = frozenset(hashed_layers)
        self._usd_per_hit = usd_per_hit
        self.variance = KeyVariance()
        self._monitors: dict[str, LayerMonitor] = {}
        self._started: dict[str, float] = {}
        self._detach: list[Callable[[], None]] = []
        self.attach()

    # -- monitors ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """Attach a monitor to each layer that has none yet."""
        for name, layer in self._runtime.layers.items():
            if name not in self._monitors:
                self._monitors[name] = self._monitor(name, layer)

    def close(self) -> None:
        """Detach every monitor."""
        for detach in self._detach:
            detach()
        self._detach.clear()

    def monitor(self, layer: str) -> LayerMonitor:
        self.attach()
        self._runtime.layer(layer)  # LayerNotFoundError for an unknown name
        return self._monitors[layer]

    async def settle(self) -> None:
        """Run a maintenance pass on every layer: the monitors hear every access made so far
        (they are told at passes)."""
        self.attach()
        for layer in self._runtime.layers.values():
            await layer.cleanup()

    def note_request(self, text: str, layer: str, agent_id: str | None = None) -> None:
        """A request for ``text`` (a goal, a query) missed in ``layer``, for ``agent_id``."""
        self.variance.miss(text, layer, agent_id)

    def _monitor(self, name: str, layer: Layer) -> LayerMonitor:
        def on_miss(key: str) -> None:
            self.variance.miss(key, name)

        monitor = LayerMonitor(
            name,
            layer.clock.now,
            layer.ttl,
            on_miss=None if name in self._hashed else on_miss,
            on_activity=self._on_activity,
        )
        self._detach.append(layer.add_access_observer(monitor))
        self._detach.append(layer.add_removal_listener(monitor))
        self._started[name] = layer.clock.now()
        return monitor

    # -- analysis ---------------------------------------------------------------------------------

    def analyze(self, *, target_hit_rate: float = DEFAULT_TARGET) -> Analysis:
        """Every layer's analysis (:mod:`rgruntime.observe.analysis`)."""
        if (
            isinstance(target_hit_rate, bool)
            or not isinstance(target_hit_rate, int | float)
            or not (0 < target_hit_rate <= 100)
        ):
            raise InvalidArgumentError(
                "target_hit_rate", target_hit_rate, "a hit rate in percent, above 0 and at most 100"
            )
        self.attach()
        layers = {}
        for name, layer in self._runtime.layers.items():
            monitor = self._monitors[name]
            now = layer.clock.now()
            layers[name] = analyze_layer(
                monitor,
                layer.stats(),
                now=now,
                observed_seconds=now - self._started[name],
                target_hit_rate=float(target_hit_rate),
                usd_per_hit=self._usd_per_hit(name),
            )
        return combine(layers)

    # -- diagnosis --------------------------------------------------------------------------------

    def diagnose(self, agent_id: str | None = None, layer: str | None = None) -> Diagnosis:
        """The causes of misses, ranked (:mod:`rgruntime.observe.diagnosis`): over every layer,
        or one ``layer``, or one agent's answers (the ``response`` layer's keys of that agent
        and the texts it asked for)."""
        if agent_id is not None and not isinstance(agent_id, str):
            raise InvalidArgumentError("agent_id", agent_id, "an agent id (a string) or None")
        if layer is not None and not isinstance(layer, str):
            raise InvalidArgumentError("layer", layer, "a layer name or None")
        self.attach()
        prefix = None
        if agent_id is not None:
            names = ["response"] if layer is None else [layer]
            prefix = f"response:{agent_id}:"
        else:
            names = list(self._runtime.layers) if layer is None else [layer]
        monitors = [self.monitor(name) for name in names]
        expired = evicted = looked_at = 0
        for monitor in monitors:
            causes = monitor.miss_causes(prefix if monitor.name == "response" else None)
            expired += causes["expired"]
            evicted += causes["evicted"]
            looked_at += sum(causes.values())
        seen, varied, parts = self.variance.shares(
            None if layer is None and agent_id is None else frozenset(names), agent_id
        )
        examples = list(self.variance.examples.values())[-3:]
        hits = misses = 0
        for name in names:
            stats = self._runtime.layer(name).stats()
            hits, misses = hits + stats.hits, misses + stats.misses
        return diagnosis_of(
            [
                variance_cause(seen, varied, parts, examples),
                self._short_ttl(monitors, expired, looked_at),
                self._small_cache(monitors, evicted, looked_at),
            ],
            hit_rate=100.0 * hits / (hits + misses) if hits + misses else 0.0,
            misses=looked_at,
            scope={"agent_id": agent_id, "layer": layer},
        )

    def _short_ttl(
        self, monitors: list[LayerMonitor], expired: int, looked_at: int
    ) -> Cause | None:
        if not expired:
            return None
        ttls = [
            ttl
            for monitor in monitors
            if (ttl := recommended_ttl(monitor.sampler.rerequest_times, monitor.needed_ttls))
            is not None
        ]
        ttl = max(ttls) if ttls else None
        return Cause(
            issue="short_ttl",
            misses=expired,
            looked_at=looked_at,
            recommendation=(
                "entries expire shortly before they are asked for again: raise the TTL"
                + (f" to about {round(ttl)} s" if ttl is not None else "")
            ),
            evidence={"recommended_ttl": ttl},
        )

    def _small_cache(
        self, monitors: list[LayerMonitor], evicted: int, looked_at: int
    ) -> Cause | None:
        if not evicted:
            return None
        sizes: dict[str, Any] = {}
        for monitor in monitors:
            stats = self._runtime.layer(monitor.name).stats()
            wanted = min(100.0, stats.hit_rate + 10.0)  # ten more points of hit rate
            footprint = max(1, math.ceil(monitor.sampler.footprint()))
            entries = recommended_size(
                monitor.sampler.curve(sizes_between(1, footprint, 32)), wanted
            )
            if entries is not None:
                sizes[monitor.name] = {
                    "entries": entries,
                    "max_size": Bytes(math.ceil(entries * monitor.mean_entry_size)),
                    "hit_rate": wanted,
                }
        return Cause(
            issue="small_cache",
            misses=evicted,
            looked_at=looked_at,
            recommendation=(
                "keys are evicted shortly before they are asked for again: raise max_size"
            ),
            evidence={"recommended_sizes": sizes},
        )

    # -- stale entries, memory --------------------------------------------------------------------

    def find_stale(
        self, agent_id: str | None = None, max_age: float | str = 3600, layer: str | None = None
    ) -> list[StaleEntry]:
        """Live entries written more than ``max_age`` ago (seconds or ``"1h"``), oldest first:
        an agent's answers (``response`` keys of that agent), a layer's, or every layer's."""
        seconds = parse_duration(max_age, field="max_age", error=InvalidArgumentError)
        if agent_id is not None and not isinstance(agent_id, str):
            raise InvalidArgumentError("agent_id", agent_id, "an agent id (a string) or None")
        self.attach()
        names = list(self._runtime.layers) if layer is None else [layer]
        found = []
        for name in names:
            monitor = self.monitor(name)
            target = self._runtime.layer(name)
            now = target.clock.now()
            prefix = f"response:{agent_id}:" if agent_id is not None else None
            for key, record in list(monitor.entries.items()):
                if prefix is not None and not key.startswith(prefix):
                    continue
                age = now - record.written_at
                if age <= seconds or record.deadline <= now:
                    continue
                left = None if record.deadline == math.inf else Seconds(record.deadline - now)
                found.append(
                    StaleEntry(
                        key=key,
                        layer=name,
                        age=Seconds(age),
                        ttl_left=left,
                        size=Bytes(record.size),
                        hits=record.hits,
                    )
                )
        found.sort(key=lambda entry: entry.age, reverse=True)
        return found

    def memory_usage(self) -> MemoryUsage:
        """Bytes held and left, and the largest entries."""
        self.attach()
        stats = self._runtime.stats()
        candidates = (
            (record.size, name, key)
            for name, monitor in self._monitors.items()
            for key, record in monitor.entries.items()
        )
        largest = heapq.nlargest(LARGEST, candidates)
        max_size = stats.max_size
        return MemoryUsage(
            used=Bytes(stats.size_bytes),
            available=None if max_size is None else Bytes(max(0, max_size - stats.size_bytes)),
            max_size=None if max_size is None else Bytes(max_size),
            entries=stats.entries,
            largest_entries=_Entries(
                LargeEntry(key=key, layer=name, size=Bytes(size)) for size, name, key in largest
            ),
            layers={
                name: {
                    "used": Bytes(layer.size_bytes),
                    "max_size": None if layer.max_size is None else Bytes(layer.max_size),
                    "entries": layer.entries,
                }
                for name, layer in stats.layers.items()
            },
        )
