"""Supervisor budgets: the runtime's max_size moves toward the layer whose misses cost more."""

from __future__ import annotations

import anyio
import pytest

import rgruntime
from rgruntime.runtime.budgets import BudgetReport, rebalance

ENTRY_SIZE = 100


def report(budget: int, value: float, ghost_bytes: int = 1000, minimum: int = 0) -> BudgetReport:
    return BudgetReport(budget=budget, minimum=minimum, ghost_value=value, ghost_bytes=ghost_bytes)


def test_a_step_moves_from_the_least_to_the_most_valuable_layer() -> None:
    reports = {"cheap": report(5000, 0.1), "idle": report(5000, 0.0), "dear": report(5000, 9.0)}
    budgets = rebalance(reports, step=500)
    assert budgets == {"cheap": 5000, "idle": 4500, "dear": 5500}
    assert sum(budgets.values()) == 15000


def test_nothing_moves_when_no_layer_would_gain() -> None:
    reports = {"a": report(5000, 0.0), "b": report(5000, 0.0)}
    assert rebalance(reports, step=500) == {"a": 5000, "b": 5000}


def test_a_layer_never_goes_below_its_minimum() -> None:
    reports = {"poor": report(1200, 0.0, minimum=1000), "rich": report(5000, 3.0)}
    assert rebalance(reports, step=500) == {"poor": 1000, "rich": 5200}
    at_minimum = {"poor": report(1000, 0.0, minimum=1000), "rich": report(5000, 3.0)}
    assert rebalance(at_minimum, step=500) == {"poor": 1000, "rich": 5000}


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_budget_shifts_toward_the_layer_whose_misses_cost_more() -> None:
    latencies = {"cheap": 0.001, "medium": 0.01, "dear": 0.1}
    fixed = {name: {"max_size": 1000} for name in rgruntime.BUILTIN_LAYERS}
    config = {
        "max_size": len(fixed) * 1000 + 3 * 1500,  # the three custom layers share 4,500 bytes
        "rebalance_interval": 1,
        "layers": {**fixed, **{name: {"ttl": None} for name in latencies}},
    }
    async with rgruntime.open_runtime(config) as runtime:
        start = {name: runtime.layer(name).stats().max_size for name in latencies}
        assert start == {"cheap": 1500, "medium": 1500, "dear": 1500}

        async def traffic(name: str) -> None:
            layer = runtime.layer(name)

            async def load() -> str:
                await anyio.sleep(latencies[name])
                return "v"

            # A working set of 30 entries (3,000 bytes) cycled through a 15-entry budget: every
            # miss is a ghost hit, costing that layer's load time.
            for turn in range(600):
                await layer.get_or_load(f"k{turn % 30}", load, size=ENTRY_SIZE)
                await layer.cleanup()

        async with anyio.create_task_group() as group:
            for name in latencies:
                group.start_soon(traffic, name)

        end = {name: runtime.layer(name).stats().max_size for name in latencies}
        assert end["dear"] > start["dear"]
        assert end["dear"] > end["medium"] >= end["cheap"]
        assert sum(end.values()) == 4500  # moved, never created
        assert runtime.stats().max_size == config["max_size"]
        assert runtime.layer("dear").statistics().budget_changes > 0
        assert runtime.layer("cheap").statistics().ghost_hits > 0
        for name in latencies:  # every layer still within its (new) budget
            stats = runtime.layer(name).stats()
            assert stats.size_bytes <= stats.max_size
