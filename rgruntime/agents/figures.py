"""Numbers a person reads: printed the way they are meant, computed with as floats.

The guide prints them as they come (``f"Cost saved: ${savings.cost_saved}"``,
``f"Hit rate: {stats.hit_rate}%"``). A float's own ``str`` shows binary noise there
(``3.4649999999999995e-05``, ``66.66666666666667``). These floats print a fixed number of
decimals with ``str()`` and an empty format; ``repr``, arithmetic and explicit formats
(``f"{x:.3f}"``) are a float's.
"""

from __future__ import annotations

import attrs

from rgruntime.readable import USD, Percent
from rgruntime.runtime.stats import CacheStats

__all__ = ["USD", "ClientCacheStats", "Percent", "readable_stats"]


@attrs.frozen(kw_only=True)
class ClientCacheStats(CacheStats):
    """``client.cache.get_stats()``: the runtime's counters, rates printed as percentages with
    one decimal (``f"Hit rate: {stats.hit_rate}%"`` prints ``Hit rate: 66.7%``).

    The top-level ``hit_rate`` counts every layer's lookups: a request the response layer
    misses looks up the model layer too (and the tool and memory layers, when its run uses
    them), so it reads lower than the share of requests answered from the cache. That share
    is ``stats.layers["response"].hit_rate``.
    """

    @property
    def hit_rate(self) -> float:
        return Percent(super().hit_rate)

    @property
    def miss_rate(self) -> float:
        return Percent(super().miss_rate)


def readable_stats(stats: CacheStats) -> ClientCacheStats:
    """``stats`` (and each layer's) as :class:`ClientCacheStats`."""
    counters = {
        field.name: getattr(stats, field.name)
        for field in attrs.fields(CacheStats)
        if field.name != "layers"
    }
    layers = {name: readable_stats(layer) for name, layer in stats.layers.items()}
    return ClientCacheStats(**counters, layers=layers)
