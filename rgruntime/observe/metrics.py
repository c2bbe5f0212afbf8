"""Metrics over time: a fixed ring of buckets of per-layer counter deltas.

Nothing here is on the hit path: a task of the runtime reads the layers' counters
(``layer.stats()``) and the savings ledger once per bucket (:class:`MetricsRing.sample`), and the
ring keeps the differences. Memory is fixed: ``buckets`` buckets (default a day of minutes), each
one record per layer. The current bucket is read live: ``series`` includes it, from the
counters now.

Times: buckets are cut on the loop's clock (so they follow a virtual clock in tests) and stamped
with the wall-clock time that clock reading corresponds to.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from rgruntime.readable import USD, Percent

__all__ = ["Counters", "LayerPoint", "MetricPoint", "MetricsRing"]

#: A bucket's length and how many are kept, unless told otherwise: a day of minutes.
BUCKET_SECONDS: Final = 60.0
BUCKETS: Final = 1440

_COUNTERS: Final = (
    "hits",
    "misses",
    "evictions",
    "expirations",
    "invalidations",
    "loads",
    "load_failures",
    "load_time",
    "tokens_saved",
    "cost_saved",
)


@attrs.frozen(kw_only=True)
class Counters:
    """One layer's counters at a moment (cumulative), and two gauges."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    loads: int = 0
    load_failures: int = 0
    load_time: float = 0.0
    tokens_saved: int = 0
    cost_saved: float = 0.0
    entries: int = 0
    size_bytes: int = 0

    def minus(self, earlier: Counters) -> Counters:
        """The counters' growth since ``earlier``; the gauges as they are now."""
        changes = {name: getattr(self, name) - getattr(earlier, name) for name in _COUNTERS}
        return Counters(**changes, entries=self.entries, size_bytes=self.size_bytes)

    def plus(self, other: Counters) -> Counters:
        both = {
            field.name: getattr(self, field.name) + getattr(other, field.name)
            for field in attrs.fields(Counters)
        }
        return Counters(**both)


@attrs.frozen(kw_only=True)
class LayerPoint:
    """One layer's figures over one interval."""

    hits: int
    misses: int
    evictions: int  # for space
    expirations: int
    invalidations: int  # invalidated, deleted, cleared, trimmed
    loads: int
    load_failures: int
    load_time: float  # mean seconds per finished load in the interval (0.0: none)
    tokens_saved: int
    cost_saved: float  # USD
    entries: int  # at the interval's end
    size_bytes: int

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Percent of the interval's lookups that hit (0.0 without any)."""
        return Percent(100.0 * self.hits / self.requests if self.requests else 0.0)

    @property
    def miss_rate(self) -> float:
        return Percent(100.0 * self.misses / self.requests if self.requests else 0.0)

    @classmethod
    def of(cls, delta: Counters) -> LayerPoint:
        finished = delta.loads + delta.load_failures
        return cls(
            hits=delta.hits,
            misses=delta.misses,
            evictions=delta.evictions,
            expirations=delta.expirations,
            invalidations=delta.invalidations,
            loads=delta.loads,
            load_failures=delta.load_failures,
            load_time=delta.load_time / finished if finished else 0.0,
            tokens_saved=delta.tokens_saved,
            cost_saved=USD(delta.cost_saved),
            entries=delta.entries,
            size_bytes=delta.size_bytes,
        )

    def as_dict(self) -> dict[str, Any]:
        record = attrs.asdict(self)
        record.update(hit_rate=float(self.hit_rate), miss_rate=float(self.miss_rate))
        return record


@attrs.frozen(kw_only=True)
class MetricPoint(LayerPoint):
    """``client.cache.get_metrics()``: one interval, every layer summed; each layer's own
    figures in ``layers``. ``timestamp``: the interval's start (UTC); ``seconds``: its length
    (the last interval is the one in progress)."""

    timestamp: dt.datetime
    seconds: float
    layers: Mapping[str, LayerPoint] = attrs.field(factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        record = super().as_dict()
        record["timestamp"] = self.timestamp.isoformat()
        record["layers"] = {name: point.as_dict() for name, point in self.layers.items()}
        return record


@attrs.frozen
class _Bucket:
    start: float  # loop clock
    end: float
    layers: Mapping[str, Counters]  # deltas over the bucket


class MetricsRing:
    """The last ``buckets`` intervals of ``bucket_seconds`` (see the module documentation).

    ``read()`` returns every layer's cumulative :class:`Counters`; ``now()`` reads the loop's
    clock; ``wall()`` the wall clock (seconds since the epoch).
    """

    def __init__(
        self,
        read: Callable[[], Mapping[str, Counters]],
        now: Callable[[], float],
        wall: Callable[[], float],
        *,
        bucket_seconds: float = BUCKET_SECONDS,
        buckets: int = BUCKETS,
    ) -> None:
        self._read = read
        self._now = now
        self.bucket_seconds = bucket_seconds
        self._ring: deque[_Bucket] = deque(maxlen=buckets)
        started = now()
        self._wall_offset = wall() - started
        self._start = started
        self._base = read()

    def sample(self) -> None:
        """Close the buckets whose time is up. Whoever comes first calls it: a read of the
        series, the alerts' tick, a layer's maintenance pass (through its monitor, at most once
        a second). When several buckets passed since the last call, what was counted in between
        is spread over them in proportion to their time (the counters were not read at their
        edges): a series read after an idle spell shows its traffic evenly."""
        now = self._now()
        span = now - self._start
        width = self.bucket_seconds
        passed = int(span // width)
        if passed < 1:
            return
        current = self._read()
        delta = _deltas(current, self._base)
        first = max(0, passed - (self._ring.maxlen or passed))  # older ones would fall out
        for index in range(first, passed):
            low, high = index * width / span, (index + 1) * width / span
            layers = {name: _between(change, low, high) for name, change in delta.items()}
            start = self._start + index * width
            self._ring.append(_Bucket(start, start + width, layers))
        # The bucket in progress keeps what was counted after the last edge.
        done = passed * width / span
        self._base = {
            name: self._base.get(name, Counters()).plus(_between(change, 0.0, done))
            for name, change in delta.items()
        }
        self._start += passed * width

    def series(self, seconds: float) -> list[MetricPoint]:
        """The intervals of the last ``seconds``, oldest first, the one in progress last."""
        self.sample()
        now = self._now()
        since = now - seconds
        buckets = [bucket for bucket in self._ring if bucket.end > since]
        buckets.append(_Bucket(self._start, now, _deltas(self._read(), self._base)))
        return [self._point(bucket) for bucket in buckets]

    def window(self, seconds: float) -> MetricPoint:
        """Every interval of the last ``seconds`` (to a bucket's length) summed in one."""
        points = self.series(seconds)
        return points[0] if len(points) == 1 else _sum_points(points)

    def _point(self, bucket: _Bucket) -> MetricPoint:
        total = Counters()
        for delta in bucket.layers.values():
            total = total.plus(delta)
        return MetricPoint(
            **attrs.asdict(LayerPoint.of(total), recurse=False),
            timestamp=dt.datetime.fromtimestamp(bucket.start + self._wall_offset, dt.UTC),
            seconds=bucket.end - bucket.start,
            layers={name: LayerPoint.of(delta) for name, delta in bucket.layers.items()},
        )


def _between(change: Counters, low: float, high: float) -> Counters:
    """The part of ``change`` counted between the shares ``low`` and ``high`` (0-1) of its
    time: whole counts rounded so that consecutive parts add up exactly; gauges unchanged."""
    parts: dict[str, Any] = {}
    for name in _COUNTERS:
        value = getattr(change, name)
        if isinstance(value, int):
            parts[name] = round(value * high) - round(value * low)
        else:
            parts[name] = value * (high - low)
    return Counters(**parts, entries=change.entries, size_bytes=change.size_bytes)


def _deltas(current: Mapping[str, Counters], base: Mapping[str, Counters]) -> dict[str, Counters]:
    # A layer added since the base counts from zero.
    return {name: counters.minus(base.get(name, Counters())) for name, counters in current.items()}


def _sum_points(points: Iterable[MetricPoint]) -> MetricPoint:
    points = list(points)
    layers: dict[str, Counters] = {}
    for point in points:
        for name, layer in point.layers.items():
            layers[name] = layers.get(name, Counters()).plus(_counters_of(layer))
    total = Counters()
    for counters in layers.values():
        total = total.plus(counters)
    last = points[-1]
    # The gauges are the last interval's.
    total = attrs.evolve(total, entries=last.entries, size_bytes=last.size_bytes)
    return MetricPoint(
        **attrs.asdict(LayerPoint.of(total), recurse=False),
        timestamp=points[0].timestamp,
        seconds=sum(point.seconds for point in points),
        layers={
            name: LayerPoint.of(
                attrs.evolve(
                    counters,
                    entries=last.layers[name].entries if name in last.layers else 0,
                    size_bytes=last.layers[name].size_bytes if name in last.layers else 0,
                )
            )
            for name, counters in layers.items()
        },
    )


def _counters_of(point: LayerPoint) -> Counters:
    finished = point.loads + point.load_failures
    return Counters(
        hits=point.hits,
        misses=point.misses,
        evictions=point.evictions,
        expirations=point.expirations,
        invalidations=point.invalidations,
        loads=point.loads,
        load_failures=point.load_failures,
        load_time=point.load_time * finished,
        tokens_saved=point.tokens_saved,
        cost_saved=float(point.cost_saved),
        entries=point.entries,
        size_bytes=point.size_bytes,
    )
