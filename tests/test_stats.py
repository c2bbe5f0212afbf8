"""Statistics: the immutable ``stats()`` record, exact counts, rates, and ``statistics()``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

import rgruntime
from rgruntime import CacheStats, Layer, LayerStatistics, Runtime

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 5}}}) as runtime:
        yield runtime


@pytest.fixture
def layer(runtime: Runtime) -> Layer:
    return runtime.layer("tool")


async def test_stats_is_an_immutable_record(layer: Layer) -> None:
    stats = layer.stats()
    assert isinstance(stats, CacheStats)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.hits = 5  # type: ignore[misc]
    fields = {
        "hits", "misses", "load_successes", "load_failures", "total_load_time", "evictions",
        "expirations", "invalidations", "entries", "size_bytes",
    }  # fmt: skip
    assert fields <= set(attrs.asdict(stats))
    # A snapshot: later activity does not change a record already taken.
    await layer.set("k", "v")
    await layer.get("k")
    assert stats.hits == 0
    assert layer.stats().hits == 1


async def test_rates_are_percentages(layer: Layer) -> None:
    assert (layer.stats().hit_rate, layer.stats().miss_rate) == (0.0, 0.0)
    await layer.set("k", "v")
    for _ in range(3):
        await layer.get("k")
    await layer.get("absent")
    stats = layer.stats()
    assert (stats.requests, stats.hit_rate, stats.miss_rate) == (4, 75.0, 25.0)


async def test_the_guides_names_are_aliases(runtime: Runtime) -> None:
    small = runtime.layer("small")
    for i in range(8):
        await small.set(f"k{i}", i, size=1000)
    await small.cleanup()
    stats = small.stats()
    assert (stats.entry_count, stats.eviction_count, stats.memory_usage) == (5, 3, 5000)
    assert (stats.entries, stats.evictions, stats.size_bytes) == (5, 3, 5000)


async def test_hit_counts_are_exact(runtime: Runtime) -> None:
    layer = runtime.layer("small")

    async def loader() -> int:
        return 0

    expected_hits = 0
    for round_ in range(20):
        for i in range(10):
            # Overwrites, deletes and evictions (max 5 entries) retire entries with hits on them.
            await layer.set(f"k{i}", round_)
            for _ in range(i):
                assert layer.get_nowait(f"k{i}") == round_
                assert await layer.get(f"k{i}") == round_
                assert await layer.get_or_load(f"k{i}", loader) == round_
                expected_hits += 3
            if i % 4 == 0:
                await layer.delete(f"k{i}")
        await layer.cleanup()
    assert layer.stats().hits == expected_hits == 20 * 3 * 45
    assert layer.stats().misses == 0


async def test_many_hits_on_one_entry_are_all_counted(layer: Layer) -> None:
    await layer.set("hot", "v")
    for _ in range(10_000):
        layer.get_nowait("hot")
    for _ in range(5_000):
        await layer.get("hot")
    assert layer.stats().hits == 15_000


async def test_runtime_stats_sum_the_layers(runtime: Runtime) -> None:
    for name in ("tool", "model", "small"):
        layer = runtime.layer(name)
        await layer.set("k", name, size=700)
        await layer.get("k")
        await layer.get("absent")
        await layer.cleanup()
    total = runtime.stats()
    assert set(total.layers) == set(runtime.layers)
    assert all(total.layers[name] == layer.stats() for name, layer in runtime.layers.items())
    assert (total.hits, total.misses, total.entries, total.size_bytes) == (3, 3, 3, 2100)
    assert total.hit_rate == 50.0
    # Bounds add up only when every layer has one.
    assert total.max_entries is None
    assert total.layers["small"].max_entries == 5


async def test_as_dict_is_json_ready(runtime: Runtime) -> None:
    await runtime.layer("tool").set("k", "v")
    record = runtime.stats().as_dict()
    assert record["entries"] == 1
    assert record["layers"]["tool"]["entries"] == 1
    assert {"hit_rate", "miss_rate", "requests"} <= set(record["layers"]["tool"])


async def test_statistics_shows_the_actors_internals(runtime: Runtime) -> None:
    layer = runtime.layer("small")
    statistics = layer.statistics()
    assert isinstance(statistics, LayerStatistics)
    assert statistics.name == "small"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        statistics.timers = 3  # type: ignore[misc]

    runs = statistics.maintenance_runs
    for i in range(5):
        layer.set_nowait(f"k{i}", i, tags=["t", f"t:{i % 2}"])
    statistics = layer.statistics()
    # Within the bounds, nothing has run yet: five writes wait for the actor. Their one wake-up
    # went straight to the actor, which was waiting for it, so nothing is queued in its inbox.
    assert (statistics.pending_writes, statistics.inbox_depth) == (5, 0)
    assert statistics.maintenance_runs == runs
    assert layer.get_nowait("k0") == 0  # the oldest entry, hit: logged for the policy
    assert layer.get_nowait("k0") == 0  # its second hit is counted on the entry, not logged
    assert layer.statistics().pending_accesses == 1
    # Two writes over max_entries evict before they return: the pass runs in the writer.
    layer.set_nowait("k5", 5, tags=["t"])
    layer.set_nowait("k6", 6, tags=["t"])
    statistics = layer.statistics()
    assert (statistics.pending_writes, statistics.pending_accesses) == (0, 0)
    assert statistics.maintenance_runs == runs + 2
    assert sorted(layer.keys()) == ["k0", "k3", "k4", "k5", "k6"]  # k0 was hit: it stays
    await layer.cleanup()
    statistics = layer.statistics()
    assert (statistics.timers, statistics.policy_entries) == (5, 5)
    assert statistics.tags == 3
    assert statistics.loads_in_flight == statistics.load_waiters == 0
    assert layer.stats().evictions == 2
    assert runtime.statistics()["small"] == statistics
    assert set(runtime.statistics()) == set(runtime.layers)


async def test_the_policy_hears_every_hit_before_it_picks_a_victim(runtime: Runtime) -> None:
    layer = runtime.layer("small")
    for i in range(5):
        await layer.set(f"k{i}", i)
    await layer.get("k0")  # the first victim, but hit: the policy heard it
    await layer.set("k5", 5)
    assert "k0" in layer
    assert "k1" not in layer
    assert layer.statistics().second_chances == 0


async def test_expirations_evictions_and_invalidations_are_separate(runtime: Runtime) -> None:
    layer = runtime.layer("small")
    for i in range(7):
        await layer.set(f"k{i}", i)
    await layer.cleanup()  # 2 evicted
    assert await layer.invalidate(keys=["k5", "k6"]) == 2
    await layer.delete("k4")
    await layer.cleanup()
    stats = layer.stats()
    assert (stats.evictions, stats.invalidations, stats.expirations) == (2, 3, 0)
    assert stats.entries == 2


def test_combining_no_layers_gives_zeros() -> None:
    total = CacheStats.combine({})
    assert (total.hits, total.entries, total.hit_rate, total.max_size) == (0, 0, 0.0, 0)
