"""The client's operations methods: ``client.cache.get_metrics/analyze/diagnose/find_stale/
memory_usage`` and ``client.alerts``, over :mod:`rgruntime.observe`.

:class:`ClientOperations` is made when the client opens: it attaches the analysis monitors to
the runtime's layers, starts the metrics task (which evaluates the alerts) in the runtime's task
group, and learns from the client what the layers' hashed keys hide: the goal of each answer
that missed (for key variance) and what a hit saved (dollars, from the savings ledger).
"""

from __future__ import annotations

from rgruntime.agents.savings import SavingsLedger
from rgruntime.observe.alerts import Alerts
from rgruntime.observe.analysis import DEFAULT_TARGET, Analysis
from rgruntime.observe.diagnosis import Diagnosis
from rgruntime.observe.metrics import MetricPoint
from rgruntime.observe.operations import MemoryUsage, Operations, StaleEntry
from rgruntime.observe.prometheus import RuntimeCollector
from rgruntime.observe.service import MetricsService
from rgruntime.runtime.runtime import Runtime

__all__ = ["ClientOperations", "OperationsMethods"]


class ClientOperations:
    """What the client's operations methods read (see the module documentation)."""

    def __init__(self, runtime: Runtime, ledger: SavingsLedger, alerts: Alerts) -> None:
        self._ledger = ledger
        self._runtime = runtime
        self.metrics = MetricsService(runtime, savings=self._savings, alerts=alerts)
        self.operations = Operations(
            runtime, usd_per_hit=self._usd_per_hit, on_activity=self.metrics.sample
        )

    async def start(self) -> None:
        await self.metrics.start()

    def close(self) -> None:
        self.operations.close()

    def collector(self) -> RuntimeCollector:
        """A Prometheus collector of the client's runtime (needs the ``metrics`` extra)."""
        operations = self.operations
        return RuntimeCollector(
            self._runtime,
            puts=lambda layer: operations.monitor(layer).writes,
            savings=self._savings,
        )

    def request_missed(self, layer: str, agent_id: str, text: str) -> None:
        """An answer (``response``: its goal) or a memory lookup (``memory``: its query) was
        not served from the cache."""
        self.operations.note_request(text, layer, agent_id)

    def _savings(self) -> dict[str, tuple[int, float]]:
        return {
            layer: (saved.tokens_saved, float(saved.cost_saved))
            for layer, saved in self._ledger.totals().items()
        }

    def _usd_per_hit(self, layer: str) -> float | None:
        saved = self._ledger.totals().get(layer)
        return float(saved.cost_saved) / saved.hits if saved is not None and saved.hits else None


class OperationsMethods:
    """``client.cache``'s operations methods (mixed into :class:`~rgruntime.agents.client.
    CacheAPI`, which provides :meth:`_operations`)."""

    def _operations(self) -> ClientOperations:
        raise NotImplementedError

    def get_metrics(self, period: float | str = "1h") -> list[MetricPoint]:
        """The metric series of the last ``period`` (one point per minute, the minute in
        progress last): hits, misses, hit rate, evictions, expirations, invalidations, loads
        and their mean time, tokens and dollars saved; each layer's in ``.layers``."""
        return self._operations().metrics.get_metrics(period)

    def prometheus_collector(self) -> RuntimeCollector:
        """A Prometheus collector reading the cache at scrape time (``metrics`` extra):
        ``rgruntime.observe.prometheus.metrics_app(collector)`` serves it."""
        return self._operations().collector()

    async def analyze(self, *, target_hit_rate: float = DEFAULT_TARGET) -> Analysis:
        """Recommended size and TTL, low-value entries; each layer's curve and figures."""
        operations = self._operations().operations
        await operations.settle()
        return operations.analyze(target_hit_rate=target_hit_rate)

    async def diagnose(self, agent_id: str | None = None, layer: str | None = None) -> Diagnosis:
        """The likeliest cause of a low hit rate (``issue``) and every cause found, ranked."""
        operations = self._operations().operations
        await operations.settle()
        return operations.diagnose(agent_id=agent_id, layer=layer)

    async def find_stale(
        self, agent_id: str | None = None, max_age: float | str = 3600, layer: str | None = None
    ) -> list[StaleEntry]:
        """Live entries older than ``max_age``: an agent's answers, a layer's, or all."""
        operations = self._operations().operations
        await operations.settle()
        return operations.find_stale(agent_id=agent_id, max_age=max_age, layer=layer)

    async def memory_usage(self) -> MemoryUsage:
        """Bytes used and available, the largest entries, each layer's figures."""
        operations = self._operations().operations
        await operations.settle()
        return operations.memory_usage()
