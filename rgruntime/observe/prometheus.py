"""Prometheus exposition of a runtime, read at scrape time (needs the ``metrics`` extra).

:class:`RuntimeCollector` is a custom collector: nothing is counted on the hit path (a
prometheus-client ``labels(...).inc()`` costs about 4 µs, twenty times a hit); each scrape reads
the layers' counters, the monitors' write counts and the savings ledger. Names follow the
ecosystem's conventions (``_total`` counters, base units, ``layer`` labels):

- ``rgruntime_cache_gets_total{layer,result="hit"|"miss"}``
- ``rgruntime_cache_puts_total{layer}`` (writes the layer's policy heard; needs the monitors)
- ``rgruntime_cache_evictions_total{layer,cause="size"|"expired"|"invalidated"}``
- ``rgruntime_cache_entries{layer}``, ``rgruntime_cache_size_bytes{layer}``,
  ``rgruntime_cache_max_size_bytes{layer}`` (layers with a byte budget)
- ``rgruntime_cache_load_duration_seconds{layer}``: a histogram of the loads' durations (the
  layers count them in fixed buckets on the miss path: ``LOAD_DURATION_BOUNDS``)
- ``rgruntime_cache_load_failures_total{layer}``
- ``rgruntime_tokens_saved_total{layer}``, ``rgruntime_cost_saved_usd_total{layer}``

``metrics_app(collector)`` is an ASGI app serving it (``Mount("/metrics", app=...)`` in
starlette), or register the collector in a registry of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rgruntime.extras import require_extra
from rgruntime.runtime.layer_state import LOAD_DURATION_BOUNDS
from rgruntime.runtime.runtime import Runtime

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["RuntimeCollector", "metrics_app", "registry"]

#: Savings per layer so far: (tokens, USD).
SavingsTotals = Callable[[], Mapping[str, tuple[int, float]]]


def _prometheus() -> Any:
    require_extra("metrics", "Prometheus exposition")
    import prometheus_client
    import prometheus_client.core

    return prometheus_client


class RuntimeCollector:
    """Reads ``runtime`` at each scrape (see the module documentation). ``puts(layer)``: the
    writes counted by the layer's monitor; ``savings()``: the client's savings per layer."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        puts: Callable[[str], int] | None = None,
        savings: SavingsTotals | None = None,
    ) -> None:
        self._core = _prometheus().core
        self._runtime = runtime
        self._puts = puts
        self._savings = savings

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        core = self._core
        if not self._runtime.is_open:
            return
        gets = core.CounterMetricFamily(
            "rgruntime_cache_gets", "Cache lookups by layer and result", labels=["layer", "result"]
        )
        puts = core.CounterMetricFamily("rgruntime_cache_puts", "Cache writes", labels=["layer"])
        evictions = core.CounterMetricFamily(
            "rgruntime_cache_evictions", "Entries removed, by cause", labels=["layer", "cause"]
        )
        entries = core.GaugeMetricFamily(
            "rgruntime_cache_entries", "Entries held", labels=["layer"]
        )
        size = core.GaugeMetricFamily("rgruntime_cache_size_bytes", "Bytes held", labels=["layer"])
        budget = core.GaugeMetricFamily(
            "rgruntime_cache_max_size_bytes", "Byte budget", labels=["layer"]
        )
        loads = core.HistogramMetricFamily(
            "rgruntime_cache_load_duration_seconds", "Loads on a miss", labels=["layer"]
        )
        failures = core.CounterMetricFamily(
            "rgruntime_cache_load_failures", "Loads that failed", labels=["layer"]
        )
        tokens = core.CounterMetricFamily(
            "rgruntime_tokens_saved", "Model tokens not spent thanks to hits", labels=["layer"]
        )
        dollars = core.CounterMetricFamily(
            "rgruntime_cost_saved_usd", "Dollars not spent thanks to hits", labels=["layer"]
        )
        saved = self._savings() if self._savings is not None else {}
        for name, layer in self._runtime.layers.items():
            stats = layer.stats()
            gets.add_metric([name, "hit"], stats.hits)
            gets.add_metric([name, "miss"], stats.misses)
            if self._puts is not None:
                puts.add_metric([name], self._puts(name))
            evictions.add_metric([name, "size"], stats.evictions)
            evictions.add_metric([name, "expired"], stats.expirations)
            evictions.add_metric([name, "invalidated"], stats.invalidations)
            entries.add_metric([name], stats.entries)
            size.add_metric([name], stats.size_bytes)
            if stats.max_size is not None:
                budget.add_metric([name], stats.max_size)
            loads.add_metric(
                [name], _cumulative(layer.statistics().load_durations), stats.total_load_time
            )
            failures.add_metric([name], stats.load_failures)
            layer_tokens, layer_dollars = saved.get(name, (0, 0.0))
            tokens.add_metric([name], layer_tokens)
            dollars.add_metric([name], layer_dollars)
        yield from (gets, evictions, entries, size, budget, loads, failures, tokens, dollars)
        if self._puts is not None:
            yield puts


def registry(collector: RuntimeCollector) -> CollectorRegistry:
    """A registry holding ``collector`` alone."""
    prometheus = _prometheus()
    own = prometheus.CollectorRegistry(auto_describe=False)
    own.register(collector)
    return own  # type: ignore[no-any-return]


def metrics_app(collector: RuntimeCollector) -> Callable[..., Any]:
    """An ASGI app exposing ``collector`` (prometheus-client's ``make_asgi_app``)."""
    return _prometheus().make_asgi_app(registry(collector))  # type: ignore[no-any-return]


def _cumulative(counts: tuple[int, ...]) -> list[tuple[str, float]]:
    """Prometheus histogram buckets (cumulative, ``+Inf`` last) from per-bucket counts."""
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*map(str, LOAD_DURATION_BOUNDS), "+Inf"), counts, strict=True):
        total += count
        buckets.append((bound, total))
    return buckets
