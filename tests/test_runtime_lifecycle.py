"""Opening and closing a runtime: layers started, closed state, loads cancelled, no task left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

import rgruntime
from rgruntime import ConfigError, LayerNotFoundError, RuntimeClosedError

pytestmark = pytest.mark.anyio

BUILTIN_TTLS = {
    "response": 3600.0,
    "session": None,
    "model": 86400.0,
    "tool": 300.0,
    "memory": 900.0,
}


async def test_default_layers_start_with_their_ttls() -> None:
    async with rgruntime.open_runtime() as runtime:
        assert runtime.is_open
        assert {name: layer.config.ttl for name, layer in runtime.layers.items()} == BUILTIN_TTLS
        for layer in runtime.layers.values():
            # Every layer is serving when the block is entered: its actor answers at once.
            await layer.set("k", 1)
            await layer.cleanup()
            assert layer.stats().entries == 1


async def test_custom_layers_from_config_and_added_while_running() -> None:
    config = {"layers": {"embeddings": {"ttl": "1d", "max_entries": 10}}}
    async with rgruntime.open_runtime(config) as runtime:
        assert set(runtime.layers) == {*BUILTIN_TTLS, "embeddings"}
        assert runtime.layer("embeddings").config.ttl == 86400.0

        rerank = await runtime.add_layer("rerank", default_ttl="5m", max_entries=3)
        assert runtime.layer("rerank") is rerank
        assert (rerank.config.ttl, rerank.config.max_entries) == (300.0, 3)
        await rerank.set("k", "v")
        assert await rerank.get("k") == "v"
        assert await runtime.invalidate(key="k") == 1

        with pytest.raises(ConfigError, match="not taken"):
            await runtime.add_layer("rerank")
        with pytest.raises(ConfigError, match="not taken"):
            await runtime.add_layer("tool")
        with pytest.raises(ConfigError) as raised:
            await runtime.add_layer("notes", strategy="fifo")
        assert raised.value.field == "cache_config.layers.notes.strategy"
        with pytest.raises(ConfigError, match="identifier"):
            await runtime.add_layer("bad name")
        assert "notes" not in runtime.layers


async def test_add_layer_takes_the_runtime_defaults() -> None:
    async with rgruntime.open_runtime({"default_ttl": "2m", "max_entries": 9}) as runtime:
        notes = await runtime.add_layer("notes")
        assert (notes.config.ttl, notes.config.max_entries) == (120.0, 9)


async def test_unknown_layer_raises_layer_not_found() -> None:
    async with rgruntime.open_runtime() as runtime:
        with pytest.raises(LayerNotFoundError) as raised:
            runtime.layer("respnose")
        assert raised.value.name == "respnose"
        assert set(raised.value.known) == set(BUILTIN_TTLS)
        assert "respnose" in str(raised.value)
        assert "response" in str(raised.value)
        with pytest.raises(LookupError):
            runtime.layer("")


async def test_a_runtime_opens_only_once() -> None:
    runtime = rgruntime.open_runtime()
    async with runtime:
        with pytest.raises(RuntimeError, match="opens only once"):
            await runtime.__aenter__()
    assert not runtime.is_open
    with pytest.raises(RuntimeError, match="opens only once"):
        async with runtime:
            pass


async def test_every_operation_after_close_raises_runtime_closed() -> None:
    async def loader() -> int:
        return 1

    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", "v")
    with pytest.raises(RuntimeClosedError):
        await layer.get("k")
    with pytest.raises(RuntimeClosedError):
        layer.get_nowait("k")
    with pytest.raises(RuntimeClosedError):
        await layer.get_or_load("k", loader)
    with pytest.raises(RuntimeClosedError):
        _ = "k" in layer
    with pytest.raises(RuntimeClosedError):
        await layer.set("k", "v")
    with pytest.raises(RuntimeClosedError):
        layer.set_nowait("k", "v")
    with pytest.raises(RuntimeClosedError):
        await layer.delete("k")
    with pytest.raises(RuntimeClosedError):
        await layer.invalidate(key="k")
    with pytest.raises(RuntimeClosedError):
        await layer.clear()
    with pytest.raises(RuntimeClosedError):
        await layer.cleanup()
    with pytest.raises(RuntimeClosedError):
        runtime.layer("tool")
    with pytest.raises(RuntimeClosedError):
        _ = runtime.layers
    with pytest.raises(RuntimeClosedError):
        await runtime.invalidate(key="k")
    with pytest.raises(RuntimeClosedError):
        await runtime.add_layer("notes")
    with pytest.raises(RuntimeClosedError):
        runtime.stats()


async def test_layer_stats_still_add_up_after_close() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", "v")
        for _ in range(5):
            await layer.get("k")
        await layer.get("absent")
    stats = layer.stats()
    assert (stats.hits, stats.misses) == (5, 1)


async def test_closing_cancels_loads_and_tells_waiters_in_other_tasks() -> None:
    loader_started = anyio.Event()
    loader_cancelled = False
    outcomes: list[BaseException | object] = []

    async def slow_loader() -> str:
        nonlocal loader_cancelled
        loader_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            loader_cancelled = True
            raise
        return "never"

    async def wait_for_load(layer: rgruntime.Layer) -> None:
        try:
            outcomes.append(await layer.get_or_load("k", slow_loader))
        except RuntimeClosedError as error:
            outcomes.append(error)

    # The waiters' task group encloses the runtime block: they outlive the runtime's tasks.
    async with anyio.create_task_group() as outside, rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        for _ in range(3):
            outside.start_soon(wait_for_load, layer)
        await loader_started.wait()
        await anyio.wait_all_tasks_blocked()
        statistics = layer.statistics()
        assert (statistics.loads_in_flight, statistics.load_waiters) == (1, 3)
    assert loader_cancelled
    assert len(outcomes) == 3
    assert all(isinstance(outcome, RuntimeClosedError) for outcome in outcomes)


async def test_no_task_is_left_behind() -> None:
    async def slow_loader() -> None:
        await anyio.sleep_forever()

    before = {task.id for task in anyio.get_running_tasks()}
    async with (
        anyio.create_task_group() as outside,
        rgruntime.open_runtime({"layers": {"extra": {}}}) as runtime,
    ):
        await runtime.add_layer("added")
        for name, layer in runtime.layers.items():
            await layer.set("k", name, ttl=60)
            outside.start_soon(_load_until_closed, layer, slow_loader)
        await anyio.wait_all_tasks_blocked()
        # The supervisor, an actor per layer and a load per layer are running now.
        during = {task.id for task in anyio.get_running_tasks()}
        assert len(during - before) >= 1 + 2 * len(runtime.layers)
    after = {task.id for task in anyio.get_running_tasks()}
    assert after == before


async def _load_until_closed(layer: rgruntime.Layer, loader: Callable[[], Awaitable[None]]) -> None:
    with pytest.raises(RuntimeClosedError):
        await layer.get_or_load("slow", loader)


async def test_an_exception_in_the_body_propagates_unchanged() -> None:
    error = ValueError("from the body")

    async def use_runtime() -> None:
        async with rgruntime.open_runtime() as runtime:
            await runtime.layer("tool").set("k", "v")
            raise error

    with pytest.raises(ValueError, match="from the body") as raised:
        await use_runtime()
    # The very object, not wrapped in an ExceptionGroup, with nothing chained to it.
    assert raised.value is error
    assert raised.value.__context__ is None
    assert raised.value.__cause__ is None


async def test_an_outer_cancellation_leaves_the_block_cleanly() -> None:
    before = {task.id for task in anyio.get_running_tasks()}
    with anyio.CancelScope() as scope:
        async with rgruntime.open_runtime() as runtime:
            await runtime.layer("tool").set("k", "v")
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert not runtime.is_open
    assert {task.id for task in anyio.get_running_tasks()} == before


async def test_runtimes_are_independent() -> None:
    async with rgruntime.open_runtime() as first, rgruntime.open_runtime() as second:
        await first.layer("tool").set("k", "first")
        assert await second.layer("tool").get("k", rgruntime.MISSING) is rgruntime.MISSING
    assert not first.is_open
    assert not second.is_open


def test_repr_shows_state_and_layers() -> None:
    runtime = rgruntime.open_runtime()
    assert repr(runtime).startswith("<Runtime new layers=[")
