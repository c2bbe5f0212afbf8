"""The lfu, tiered and cost strategies driven by a live layer (the policies themselves are tested
against brute-force references in tests/policies)."""

from __future__ import annotations

import anyio
import pytest

import rgruntime
from rgruntime import Layer

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GUIDE_TIERS = [
    {"name": "hot", "size": "10MB", "ttl": 300},
    {"name": "warm", "size": "50MB", "ttl": 3600},
    {"name": "cold", "size": "200MB", "ttl": 86400},
]


def live(layer: Layer, keys: list[str]) -> list[str]:
    return [key for key in keys if key in layer]


async def test_lfu_keeps_hot_keys_through_a_scan() -> None:
    config = {"layers": {"small": {"max_entries": 10, "strategy": "lfu"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("small")
        hot = [f"hot{i}" for i in range(5)]
        for key in hot:
            await layer.set(key, key)
        for _ in range(20):  # frequently read, and the actor hears of it at eviction time
            for key in hot:
                assert await layer.get(key) == key
            await layer.cleanup()
        for i in range(200):  # a scan of one-hit wonders
            await layer.set(f"scan{i}", i)
            await layer.cleanup()
        assert live(layer, hot) == hot
        assert layer.stats().entries <= 10


async def test_lru_loses_hot_keys_to_the_same_scan() -> None:
    # The control for the test above: the scan does flush an LRU layer.
    config = {"layers": {"small": {"max_entries": 10, "strategy": "lru"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("small")
        hot = [f"hot{i}" for i in range(5)]
        for key in hot:
            await layer.set(key, key)
        for key in hot:
            await layer.get(key)
        for i in range(200):
            await layer.set(f"scan{i}", i)
            await layer.cleanup()
        assert live(layer, hot) == []


async def test_the_guides_tiered_config_is_the_budget() -> None:
    config = {"strategy": "tiered", "tiers": GUIDE_TIERS}
    async with rgruntime.open_runtime(config) as runtime:
        assert runtime.config.max_size == 260_000_000
        assert runtime.stats().max_size is not None
        assert runtime.stats().max_size <= 260_000_000
        assert runtime.layer("model").config.strategy == "tiered"


async def test_a_tier_ttl_caps_an_entry_deadline() -> None:
    tiers = [{"name": "hot", "size": 1000, "ttl": 10}, {"name": "cold", "size": 9000, "ttl": 100}]
    config = {"layers": {"notes": {"strategy": "tiered", "tiers": tiers, "ttl": None}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("notes")
        assert layer.config.max_size == 10_000  # its tiers are its budget
        await layer.set("note", "text")  # no TTL of its own: the tier's applies
        await layer.cleanup()
        await anyio.sleep(99)
        assert "note" in layer
        await anyio.sleep(2)
        assert "note" not in layer
        assert layer.stats().expirations == 1


async def test_the_cost_strategy_bounds_a_layer() -> None:
    config = {"layers": {"costly": {"max_entries": 5, "strategy": "cost"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("costly")
        for i in range(50):
            await layer.set(f"k{i}", i)
            if i % 3 == 0:
                await layer.get("k0")
            await layer.cleanup()
        assert layer.stats().entries == 5
        assert "k0" in layer  # read again and again: worth keeping


async def test_the_cost_strategy_keeps_one_expensive_answer_over_cheap_ones() -> None:
    config = {"layers": {"mixed": {"max_entries": 5, "strategy": "cost"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("mixed")
        await layer.set("model-answer", "long essay", cost=5.0)  # e.g. dollars or seconds
        for i in range(40):  # eight times more cheap tool results than fit
            await layer.set(f"tool-{i}", i, cost=0.01)
            await layer.cleanup()
        assert "model-answer" in layer
        assert layer.stats().entries == 5


async def test_a_load_costs_what_it_took_unless_told() -> None:
    config = {"layers": {"mixed": {"max_entries": 3, "strategy": "cost"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("mixed")

        async def slow() -> str:
            await anyio.sleep(30)  # virtual seconds
            return "slow"

        async def quick() -> str:
            return "quick"

        await layer.get_or_load("slow", slow)
        for i in range(20):
            await layer.get_or_load(f"quick-{i}", quick)
            await layer.cleanup()
        assert "slow" in layer


async def test_under_lru_the_same_expensive_answer_is_evicted() -> None:
    # The control for the test above: without costs, the slow load is just the oldest entry.
    config = {"layers": {"mixed": {"max_entries": 3, "strategy": "lru"}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("mixed")
        await layer.set("model-answer", "long essay", cost=5.0)
        for i in range(20):
            await layer.set(f"tool-{i}", i, cost=0.01)
            await layer.cleanup()
        assert "model-answer" not in layer


async def test_a_bad_cost_is_refused_and_changes_nothing() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", 1)
        for bad in (0, -1.0, float("inf"), "high", True):
            with pytest.raises(rgruntime.InvalidArgumentError, match="cost"):
                await layer.set("k", 2, cost=bad)  # type: ignore[arg-type]
        assert await layer.get("k") == 1
