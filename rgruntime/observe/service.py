"""The metrics task: one actor of the runtime that evaluates alerts on the metric series.

Started in the runtime's task group (``runtime.start_service``). While at least one alert exists
it ticks every ``tick`` seconds: it closes the buckets of the
:class:`~rgruntime.observe.metrics.MetricsRing` that are due and evaluates the alerts, whose
actions run in its own task group (so a slow webhook never delays the next tick, and every action
ends when the runtime closes). Without alerts it sleeps until one is created: it never wakes a
runtime for nothing, and under a virtual clock it sets no deadline that the clock would jump to.
Buckets are also closed by reads of the series and by the layers' maintenance passes
(:meth:`MetricsService.sample`). Nothing of it touches the hit path: it reads counters the layers
keep anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio
import anyio.abc

from rgruntime.errors import InvalidArgumentError, RuntimeClosedError
from rgruntime.observe.alerts import Alerts
from rgruntime.observe.metrics import BUCKET_SECONDS, BUCKETS, Counters, MetricPoint, MetricsRing
from rgruntime.runtime.runtime import Runtime
from rgruntime.units import parse_duration

__all__ = ["MetricsService", "layer_counters"]

#: Savings per layer so far: (tokens, USD). The client's ledger provides it.
SavingsTotals = Callable[[], Mapping[str, tuple[int, float]]]


def layer_counters(runtime: Runtime, savings: SavingsTotals | None = None) -> dict[str, Counters]:
    """Every layer's cumulative counters now."""
    saved = savings() if savings is not None else {}
    counters = {}
    for name, layer in runtime.layers.items():
        stats = layer.stats()
        tokens, usd = saved.get(name, (0, 0.0))
        counters[name] = Counters(
            hits=stats.hits,
            misses=stats.misses,
            evictions=stats.evictions,
            expirations=stats.expirations,
            invalidations=stats.invalidations,
            loads=stats.load_successes,
            load_failures=stats.load_failures,
            load_time=stats.total_load_time,
            tokens_saved=tokens,
            cost_saved=usd,
            entries=stats.entries,
            size_bytes=stats.size_bytes,
        )
    return counters


class MetricsService:
    """The metric series and the alerts of one runtime (see the module documentation)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        savings: SavingsTotals | None = None,
        bucket_seconds: float = BUCKET_SECONDS,
        buckets: int = BUCKETS,
        tick: float = 10.0,
        wall: Callable[[], float] = time.time,
        alerts: Alerts | None = None,
    ) -> None:
        if not bucket_seconds > 0 or not tick > 0:
            raise InvalidArgumentError(
                "bucket_seconds", (bucket_seconds, tick), "a bucket length and a tick above 0"
            )
        self._runtime = runtime
        self._savings = savings
        self._bucket_seconds = bucket_seconds
        self._buckets = buckets
        self._tick = min(tick, bucket_seconds)
        self._wall = wall
        self._ring: MetricsRing | None = None
        self._alerts_created: anyio.Event | None = None
        self.alerts = alerts if alerts is not None else Alerts(wall)
        self.alerts.on_create = self._alert_created

    async def start(self) -> None:
        """Start the task in the runtime's task group."""
        await self._runtime.start_service(self.run, "rgruntime metrics")

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._ring = MetricsRing(
            lambda: layer_counters(self._runtime, self._savings),
            anyio.current_time,
            self._wall,
            bucket_seconds=self._bucket_seconds,
            buckets=self._buckets,
        )
        ring = self._ring
        async with anyio.create_task_group() as actions:
            task_status.started()
            while True:
                if not self.alerts.list():
                    self._alerts_created = anyio.Event()
                    await self._alerts_created.wait()
                await anyio.sleep(self._tick)
                if not self._runtime.is_open:
                    # Closing: the runtime marks itself closed, then cancels its task group (on
                    # asyncio this task may wake in between). The cancellation is on its way.
                    await anyio.sleep_forever()
                await self.alerts.evaluate(actions, anyio.current_time(), ring.window)

    def sample(self) -> None:
        """Close the buckets that are due (a layer's maintenance pass calls it, through its
        monitor, at most once a second)."""
        if self._ring is not None and self._runtime.is_open:
            self._ring.sample()

    def _alert_created(self) -> None:
        if self._alerts_created is not None:
            self._alerts_created.set()

    def get_metrics(self, period: float | str = "1h") -> list[MetricPoint]:
        """The intervals of the last ``period``, oldest first; the last is in progress."""
        seconds = parse_duration(period, field="period", error=InvalidArgumentError)
        return self._require_ring().series(seconds)

    def _require_ring(self) -> MetricsRing:
        if self._ring is None:
            raise RuntimeClosedError("the metrics task is not running")
        return self._ring
