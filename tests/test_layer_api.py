"""The Layer API on both backends: reads, writes, loads, invalidation, membership, MISSING."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, InvalidArgumentError, Layer, Runtime
from rgruntime.sizing import weigh

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with rgruntime.open_runtime() as runtime:
        yield runtime


@pytest.fixture
async def layer(runtime: Runtime) -> Layer:
    return runtime.layer("tool")


async def test_get_returns_the_default_on_a_miss(layer: Layer) -> None:
    assert await layer.get("absent") is None
    assert await layer.get("absent", MISSING) is MISSING
    assert await layer.get("absent", "fallback") == "fallback"
    assert layer.get_nowait("absent") is None
    assert layer.get_nowait("absent", MISSING) is MISSING


async def test_set_then_get(layer: Layer) -> None:
    await layer.set("weather:paris", {"temp": 21})
    assert await layer.get("weather:paris") == {"temp": 21}
    assert layer.get_nowait("weather:paris") == {"temp": 21}


async def test_set_overwrites(layer: Layer) -> None:
    await layer.set("k", 1)
    await layer.set("k", 2)
    assert await layer.get("k") == 2
    await layer.cleanup()
    assert layer.stats().entries == 1


async def test_none_is_a_value_that_can_be_cached(layer: Layer) -> None:
    await layer.set("nothing", None)
    assert await layer.get("nothing", MISSING) is None
    assert layer.get_nowait("nothing", MISSING) is None
    assert "nothing" in layer
    assert await layer.get("absent", MISSING) is MISSING
    stats = layer.stats()
    assert (stats.hits, stats.misses) == (2, 1)


async def test_a_cached_none_is_not_reloaded(layer: Layer) -> None:
    calls = 0

    async def loader() -> None:
        nonlocal calls
        calls += 1

    assert await layer.get_or_load("k", loader) is None
    assert await layer.get_or_load("k", loader) is None
    assert calls == 1


async def test_read_your_writes_with_no_await_in_between(layer: Layer) -> None:
    # set_nowait and get_nowait never suspend: nothing else runs between them.
    for i in range(100):
        layer.set_nowait(f"k{i}", i)
        assert layer.get_nowait(f"k{i}") == i
        layer.set_nowait(f"k{i}", -i)
        assert layer.get_nowait(f"k{i}") == -i
    assert layer.delete_nowait("k5")
    assert layer.get_nowait("k5", MISSING) is MISSING
    # The actor has not run yet: all of it is still waiting in the write buffer.
    assert layer.statistics().pending_writes == 201


async def test_hits_and_writes_do_not_suspend(layer: Layer) -> None:
    await layer.set("k", "v")
    with anyio.CancelScope() as scope:
        scope.cancel()
        # Under a cancelled scope, any checkpoint would raise: these must not reach one.
        assert await layer.get("k") == "v"
        await layer.set("k2", "v2")
        assert await layer.get_or_load("k2", _never_called) == "v2"
    assert not scope.cancelled_caught


async def _never_called() -> object:
    raise AssertionError("the loader ran although the key was cached")


async def test_set_accepts_ttl_tags_and_size(layer: Layer) -> None:
    await layer.set("k", "v", ttl=60, tags=["weather", "weather:paris"], size=1234)
    await layer.set("k2", "v", ttl="2m", tags=("weather",))
    await layer.cleanup()
    assert layer.stats().size_bytes == 1234 + weigh("k2", "v", None)
    assert layer.statistics().tags == 2
    assert await layer.invalidate(tags=["weather"]) == 2


async def test_delete_reports_whether_a_live_entry_went(layer: Layer) -> None:
    await layer.set("k", "v")
    assert await layer.delete("k") is True
    assert await layer.get("k", MISSING) is MISSING
    assert await layer.delete("k") is False
    assert layer.delete_nowait("never") is False


async def test_get_or_load_loads_once_then_hits(layer: Layer) -> None:
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"temp": 17}

    assert await layer.get_or_load("weather:london", loader) == {"temp": 17}
    assert await layer.get_or_load("weather:london", loader) == {"temp": 17}
    assert await layer.get("weather:london") == {"temp": 17}
    assert calls == 1
    stats = layer.stats()
    assert (stats.hits, stats.misses, stats.load_successes) == (2, 1, 1)


async def test_get_or_load_stores_with_ttl_and_tags(layer: Layer) -> None:
    async def loader() -> str:
        return "loaded"

    await layer.get_or_load("k", loader, ttl="1m", tags=["group"], size=1000)
    await layer.cleanup()
    assert layer.stats().size_bytes == 1000
    assert await layer.invalidate(tags=["group"]) == 1
    assert "k" not in layer


async def test_contains_sees_live_entries_and_counts_nothing(layer: Layer) -> None:
    await layer.set("k", "v")
    assert "k" in layer
    assert "absent" not in layer
    assert 42 not in layer  # not a key at all: simply not in the layer
    stats = layer.stats()
    assert (stats.hits, stats.misses) == (0, 0)


async def test_invalidate_returns_the_union_of_its_criteria(layer: Layer) -> None:
    for key, tags in [
        ("weather_paris", ["weather"]),
        ("weather_rome", []),
        ("news_1", ["news"]),
        ("news_2", ["news"]),
        ("stock_1", []),
        ("stock_2", []),
    ]:
        await layer.set(key, key, tags=tags)
    # weather_paris is picked by both the key and the pattern: it counts once.
    removed = await layer.invalidate(
        key="weather_paris", keys=["stock_1", "nope"], pattern="weather_*", tags=["news"]
    )
    assert removed == 5
    assert [key for key in ("weather_paris", "news_1", "stock_1", "stock_2") if key in layer] == [
        "stock_2"
    ]


async def test_invalidate_needs_a_criterion(layer: Layer) -> None:
    with pytest.raises(InvalidArgumentError, match="at least one of key=, keys=, pattern="):
        await layer.invalidate()


async def test_invalidating_empty_lists_removes_nothing(layer: Layer) -> None:
    # Built by a program, an empty list of keys is a valid request that selects nothing.
    await layer.set("kept", 1, tags=["t"])
    assert await layer.invalidate(keys=[], tags=[]) == 0
    assert "kept" in layer


async def test_clear_removes_everything_and_counts_it(layer: Layer) -> None:
    for i in range(10):
        await layer.set(f"k{i}", i)
    assert await layer.clear() == 10
    assert layer.stats().entries == 0
    assert await layer.clear() == 0


async def test_cleanup_runs_a_maintenance_pass(layer: Layer) -> None:
    before = layer.statistics().maintenance_runs
    layer.set_nowait("a", 1)
    layer.set_nowait("b", 2)
    assert layer.statistics().pending_writes == 2
    await layer.cleanup()
    after = layer.statistics()
    assert after.pending_writes == 0
    assert after.maintenance_runs > before
    assert after.policy_entries == 2


async def test_set_waits_for_the_actor_when_the_write_buffer_is_full(runtime: Runtime) -> None:
    layer = await runtime.add_layer("bounded_buffer", write_buffer_size=4)
    for i in range(20):
        await layer.set(f"k{i}", i)
        # Backpressure: a writer never gets more than the buffer ahead of the actor.
        assert layer.statistics().pending_writes < 4
    for i in range(20):
        layer.set_nowait(f"n{i}", i)  # never waits, whatever the buffer holds
    assert layer.statistics().pending_writes == 20


async def test_runtime_invalidate_sums_over_layers(runtime: Runtime) -> None:
    for name in ("response", "model", "tool"):
        await runtime.layer(name).set("shared", name, tags=["user:42"])
        await runtime.layer(name).set("other", name)
    assert await runtime.invalidate(tags=["user"]) == 3
    assert await runtime.invalidate(key="other") == 3
    assert await runtime.invalidate(pattern="*") == 0
    with pytest.raises(InvalidArgumentError):
        await runtime.invalidate()


async def test_layers_are_reached_by_name(runtime: Runtime) -> None:
    layers = runtime.layers
    assert set(layers) == {"response", "session", "model", "tool", "memory"}
    assert all(runtime.layer(name) is layer for name, layer in layers.items())
    assert all(layer.name == name for name, layer in layers.items())
    with pytest.raises(TypeError):
        layers["x"] = layers["tool"]  # type: ignore[index]


async def test_layers_are_independent(runtime: Runtime) -> None:
    await runtime.layer("tool").set("k", "tool")
    await runtime.layer("model").set("k", "model")
    assert await runtime.layer("tool").get("k") == "tool"
    assert await runtime.layer("model").get("k") == "model"
    assert await runtime.layer("response").get("k", MISSING) is MISSING
    assert await runtime.layer("tool").invalidate(key="k") == 1
    assert await runtime.layer("model").get("k") == "model"


async def test_many_concurrent_requests_are_all_answered(layer: Layer) -> None:
    # More requests than the actor's inbox holds at once: the callers queue, none is lost.
    for i in range(200):
        await layer.set(f"k{i}", i)
    removed: list[int] = []

    async def invalidate(i: int) -> None:
        removed.append(await layer.invalidate(key=f"k{i}"))
        await layer.cleanup()

    async with anyio.create_task_group() as callers:
        for i in range(200):
            callers.start_soon(invalidate, i)
    assert removed == [1] * 200
    assert layer.stats().entries == 0
