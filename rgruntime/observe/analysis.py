"""``analyze()``: what size and TTL a layer should have, read from its monitor (pure).

Per layer: the LRU miss-ratio curve from sampled reuse distances (entries, and bytes at the
layer's mean entry size), the size that reaches a target hit rate and the curve's knee, a TTL
that keeps entries until most re-requests arrive, the entries that cost space and never paid
back, and what a size change would save per hour at the layer's measured load cost (seconds of
loading, and dollars where the client's savings ledger knows what a hit saves).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from rgruntime.observe.figures import Bytes, Seconds
from rgruntime.observe.monitor import LayerMonitor
from rgruntime.observe.recommend import knee_size, recommended_size, recommended_ttl
from rgruntime.observe.shards import MAX_SAMPLED_KEYS, MissRatioCurve, sizes_between
from rgruntime.runtime.stats import CacheStats

__all__ = ["Analysis", "LayerAnalysis", "SizeChange", "analyze_layer", "combine"]

#: Points of the curve an analysis reports.
CURVE_POINTS: Final = 24
#: The hit rate (percent) recommended sizes aim at unless told otherwise: the guide's "aim for
#: >70% hit rate".
DEFAULT_TARGET: Final = 70.0
#: An entry not hit for this long (or for the 90th percentile of re-request times, if longer)
#: since it was written counts as low value.
MIN_PATIENCE: Final = 60.0


def _bytes(value: float | None) -> Bytes | None:
    return None if value is None else Bytes(math.ceil(value))


@attrs.frozen(kw_only=True)
class SizeChange:
    """What running the layer at another size would do, per hour of the traffic seen."""

    entries: int
    size: Bytes | None
    hit_rate: float  # percent, predicted
    extra_hits_per_hour: float  # negative: fewer
    load_seconds_saved_per_hour: float
    usd_saved_per_hour: float | None  # None: no cost is known for this layer's misses

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class LayerAnalysis:
    """One layer's analysis (see the module documentation). Sizes in entries and bytes."""

    layer: str
    requests: int
    hit_rate: float  # percent, measured over the requests the monitor saw
    entries: int
    mean_entry_size: float
    curve: MissRatioCurve
    target_hit_rate: float
    recommended_entries: int | None
    recommended_size: Bytes | None
    knee_entries: int | None
    knee_size: Bytes | None
    recommended_ttl: Seconds | None
    low_value_count: int
    low_value_bytes: Bytes
    changes: tuple[SizeChange, ...]
    sampled_keys: int
    sampling_rate: float
    max_sampled_keys: int = MAX_SAMPLED_KEYS

    def as_dict(self) -> dict[str, Any]:
        record = attrs.asdict(self, recurse=False)
        record["curve"] = self.curve.as_dict()
        record["changes"] = [change.as_dict() for change in self.changes]
        return record


@attrs.frozen(kw_only=True)
class Analysis:
    """``client.cache.analyze()``: the guide's three figures over the whole cache, and each
    layer's analysis in ``layers``.

    ``recommended_size`` sums the layers' recommended sizes (the runtime's ``max_size`` is
    shared by its layers); ``recommended_ttl`` is the ``response`` layer's (else the first layer
    that has one); ``low_value_count`` sums the layers'.
    """

    recommended_size: Bytes | None
    recommended_ttl: Seconds | None
    low_value_count: int
    layers: Mapping[str, LayerAnalysis]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recommended_size": self.recommended_size,
            "recommended_ttl": self.recommended_ttl,
            "low_value_count": self.low_value_count,
            "layers": {name: layer.as_dict() for name, layer in self.layers.items()},
        }


def analyze_layer(
    monitor: LayerMonitor,
    stats: CacheStats,
    *,
    now: float,
    observed_seconds: float,
    target_hit_rate: float = DEFAULT_TARGET,
    usd_per_hit: float | None = None,
) -> LayerAnalysis:
    """Analyse one layer. ``observed_seconds``: how long the monitor has listened (for the
    per-hour figures); ``usd_per_hit``: dollars a hit of this layer saves, if known."""
    sampler = monitor.sampler
    footprint = max(1, math.ceil(sampler.footprint()))
    curve = sampler.curve(sizes_between(1, footprint, CURVE_POINTS))
    mean_size = monitor.mean_entry_size
    recommended = recommended_size(curve, target_hit_rate)
    knee = knee_size(curve)
    ttl = recommended_ttl(sampler.rerequest_times, monitor.needed_ttls)
    # Low value: held for longer than most re-requests take (MIN_PATIENCE at least), never hit.
    patience = max(MIN_PATIENCE, sampler.rerequest_times.quantile(0.9) or 0.0)
    low_value = [
        record
        for record in monitor.entries.values()
        if record.hits == 0 and now - record.written_at > patience and record.deadline > now
    ]
    requests = sampler.requests
    hours = observed_seconds / 3600 if observed_seconds > 0 else 0.0
    per_hour = requests / hours if hours else 0.0
    current = curve.miss_ratio(stats.entries) if stats.entries else 1.0
    load_cost = stats.average_load_time
    changes = []
    for entries in sorted({size for size in (recommended, knee) if size is not None}):
        fewer_misses = (current - curve.miss_ratio(entries)) * per_hour
        changes.append(
            SizeChange(
                entries=entries,
                size=_bytes(entries * mean_size) if mean_size else None,
                hit_rate=100.0 * (1.0 - curve.miss_ratio(entries)),
                extra_hits_per_hour=fewer_misses,
                load_seconds_saved_per_hour=fewer_misses * load_cost,
                usd_saved_per_hour=None if usd_per_hit is None else fewer_misses * usd_per_hit,
            )
        )
    return LayerAnalysis(
        layer=monitor.name,
        requests=requests,
        hit_rate=stats.hit_rate,
        entries=stats.entries,
        mean_entry_size=mean_size,
        curve=curve,
        target_hit_rate=target_hit_rate,
        recommended_entries=recommended,
        recommended_size=_bytes(recommended * mean_size) if recommended and mean_size else None,
        knee_entries=knee,
        knee_size=_bytes(knee * mean_size) if knee and mean_size else None,
        recommended_ttl=None if ttl is None else Seconds(ttl),
        low_value_count=len(low_value),
        low_value_bytes=Bytes(sum(record.size for record in low_value)),
        changes=tuple(changes),
        sampled_keys=sampler.tracked_keys,
        sampling_rate=sampler.sampling_rate,
    )


def combine(layers: Mapping[str, LayerAnalysis]) -> Analysis:
    """The guide's whole-cache figures from each layer's analysis."""
    sizes = [layer.recommended_size for layer in layers.values() if layer.recommended_size]
    ttl = layers["response"].recommended_ttl if "response" in layers else None
    if ttl is None:
        ttl = next(
            (layer.recommended_ttl for layer in layers.values() if layer.recommended_ttl), None
        )
    return Analysis(
        recommended_size=Bytes(sum(sizes)) if sizes else None,
        recommended_ttl=ttl,
        low_value_count=sum(layer.low_value_count for layer in layers.values()),
        layers=dict(layers),
    )
