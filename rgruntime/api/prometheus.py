"""``/metrics``: the cache's counters in Prometheus' text format, read at scrape time."""

from __future__ import annotations

from typing import Final

from rgruntime.runtime.stats import CacheStats

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: (metric, type, help, CacheStats attribute)
_SERIES: Final = (
    ("rgruntime_cache_hits_total", "counter", "Lookups answered from the layer.", "hits"),
    ("rgruntime_cache_misses_total", "counter", "Lookups the layer could not answer.", "misses"),
    ("rgruntime_cache_evictions_total", "counter", "Entries evicted for room.", "evictions"),
    ("rgruntime_cache_expirations_total", "counter", "Entries whose TTL ran out.", "expirations"),
    (
        "rgruntime_cache_invalidations_total",
        "counter",
        "Entries removed by invalidation or deletion.",
        "invalidations",
    ),
    ("rgruntime_cache_load_failures_total", "counter", "Loads that raised.", "load_failures"),
    (
        "rgruntime_cache_stale_served_total",
        "counter",
        "Failed loads answered with an expired copy.",
        "stale_served",
    ),
    ("rgruntime_cache_entries", "gauge", "Entries held.", "entries"),
    ("rgruntime_cache_size_bytes", "gauge", "Bytes held (estimated).", "size_bytes"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(stats: CacheStats) -> str:
    """Every series, one sample per layer."""
    lines: list[str] = []
    for metric, kind, text, attribute in _SERIES:
        lines.append(f"# HELP {metric} {text}")
        lines.append(f"# TYPE {metric} {kind}")
        for name, layer in stats.layers.items():
            lines.append(f'{metric}{{layer="{_label(name)}"}} {getattr(layer, attribute)}')
    return "\n".join(lines) + "\n"
