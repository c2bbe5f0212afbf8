"""Single-flight ``get_or_load``: one loader call per missing key, however many callers wait.

These tests run in virtual time: a deadlock (a loader waiting for itself) would leave every task
blocked, the clock would jump to the ``fail_after`` deadline and the test would fail at once
instead of hanging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, Layer, LoaderRecursionError, Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with rgruntime.open_runtime() as runtime:
        yield runtime


@pytest.fixture
def layer(runtime: Runtime) -> Layer:
    return runtime.layer("tool")


class GatedLoader:
    """A loader that counts its calls and returns only once the test releases it."""

    def __init__(self, value: object = "loaded", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.cancelled = 0
        self.release = anyio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return self.value


async def test_a_thousand_concurrent_callers_run_the_loader_once(layer: Layer) -> None:
    loader = GatedLoader({"answer": 42})
    results: list[object] = []

    async def call() -> None:
        results.append(await layer.get_or_load("k", loader))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            for _ in range(1000):
                callers.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            statistics = layer.statistics()
            assert (statistics.loads_in_flight, statistics.load_waiters) == (1, 1000)
            loader.release.set()
    assert loader.calls == 1
    assert len(results) == 1000
    assert all(result is results[0] for result in results)
    assert results[0] == {"answer": 42}
    assert await layer.get_or_load("k", loader) == {"answer": 42}
    assert loader.calls == 1
    stats, statistics = layer.stats(), layer.statistics()
    assert (stats.misses, stats.hits, stats.load_successes) == (1000, 1, 1)
    assert (statistics.loads_in_flight, statistics.load_waiters) == (0, 0)


async def test_a_cancelled_caller_leaves_without_disturbing_the_others(layer: Layer) -> None:
    loader = GatedLoader()
    results: list[object] = []
    impatient_scope = anyio.CancelScope()

    async def patient() -> None:
        results.append(await layer.get_or_load("k", loader))

    async def impatient() -> None:
        with impatient_scope:
            await layer.get_or_load("k", loader)
        results.append("left")

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            callers.start_soon(impatient)
            for _ in range(3):
                callers.start_soon(patient)
            await anyio.wait_all_tasks_blocked()
            impatient_scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert results == ["left"]
            assert layer.statistics().load_waiters == 3
            assert loader.cancelled == 0
            loader.release.set()
    assert results == ["left", "loaded", "loaded", "loaded"]
    assert loader.calls == 1
    assert await layer.get("k") == "loaded"


async def test_the_load_is_cancelled_when_its_last_waiter_leaves(layer: Layer) -> None:
    loader = GatedLoader()
    scopes = [anyio.CancelScope(), anyio.CancelScope()]

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            await layer.get_or_load("k", loader)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            for scope in scopes:
                callers.start_soon(caller, scope)
            await anyio.wait_all_tasks_blocked()
            scopes[0].cancel()
            await anyio.wait_all_tasks_blocked()
            assert loader.cancelled == 0  # one waiter is left: the load goes on
            assert layer.statistics().loads_in_flight == 1
            scopes[1].cancel()
            await anyio.wait_all_tasks_blocked()
            # The loader itself saw the cancellation; nothing is cached or counted as a result.
            assert loader.cancelled == 1
            assert layer.statistics().loads_in_flight == 0
        assert "k" not in layer
        stats = layer.stats()
        assert (stats.load_successes, stats.load_failures) == (0, 0)
        # A later call starts a fresh load.
        loader.release.set()
        assert await layer.get_or_load("k", loader) == "loaded"
    assert loader.calls == 2


async def test_a_loader_error_reaches_every_waiter_and_is_not_cached(layer: Layer) -> None:
    loader = GatedLoader(error=ValueError("model provider down"))
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await layer.get_or_load("k", loader)
        except ValueError as error:
            errors.append(error)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            for _ in range(5):
                callers.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            loader.release.set()
    assert len(errors) == 5
    assert all(str(error) == "model provider down" for error in errors)
    assert loader.calls == 1
    assert "k" not in layer
    assert layer.stats().load_failures == 1
    # Not cached: the next call loads again (and this time succeeds).
    loader.error = None
    assert await layer.get_or_load("k", loader) == "loaded"
    assert loader.calls == 2


async def invalidate_key(runtime: Runtime, layer: Layer) -> None:
    assert await layer.invalidate(key="k") == 0


async def invalidate_parent_tag(runtime: Runtime, layer: Layer) -> None:
    assert await layer.invalidate(tags=["weather"]) == 0


async def invalidate_pattern(runtime: Runtime, layer: Layer) -> None:
    assert await layer.invalidate(pattern="k*") == 0


async def invalidate_everywhere(runtime: Runtime, layer: Layer) -> None:
    assert await runtime.invalidate(keys=["k"]) == 0


async def delete(runtime: Runtime, layer: Layer) -> None:
    assert await layer.delete("k") is False


async def clear(runtime: Runtime, layer: Layer) -> None:
    assert await layer.clear() == 0


async def overwrite(runtime: Runtime, layer: Layer) -> None:
    await layer.set("k", "written")


@pytest.mark.parametrize(
    ("interfere", "cached_after"),
    [
        (invalidate_key, MISSING),
        (invalidate_parent_tag, MISSING),
        (invalidate_pattern, MISSING),
        (invalidate_everywhere, MISSING),
        (delete, MISSING),
        (clear, MISSING),
        (overwrite, "written"),
    ],
)
async def test_a_change_during_a_load_keeps_its_result_out_of_the_cache(
    runtime: Runtime,
    layer: Layer,
    interfere: Callable[[Runtime, Layer], Awaitable[None]],
    cached_after: object,
) -> None:
    loader = GatedLoader()
    results: list[object] = []

    async def call() -> None:
        results.append(await layer.get_or_load("k", loader, tags=["weather:paris"]))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            callers.start_soon(call)
            callers.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            await interfere(runtime, layer)
            # The load is detached: a caller arriving now starts a fresh one...
            assert layer.statistics().loads_in_flight == 0
            loader.release.set()
    # ...while those already waiting still get the result of theirs.
    assert results == ["loaded", "loaded"]
    assert loader.calls == 1
    assert await layer.get("k", MISSING) == cached_after


async def test_a_caller_after_an_invalidation_starts_a_fresh_load(layer: Layer) -> None:
    stale, fresh = GatedLoader("stale"), GatedLoader("fresh")
    results: dict[str, object] = {}

    async def call(name: str, loader: GatedLoader) -> None:
        results[name] = await layer.get_or_load("k", loader)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            callers.start_soon(call, "early", stale)
            await anyio.wait_all_tasks_blocked()
            await layer.invalidate(key="k")
            callers.start_soon(call, "late", fresh)
            await anyio.wait_all_tasks_blocked()
            fresh.release.set()
            await anyio.wait_all_tasks_blocked()
            stale.release.set()
    assert results == {"late": "fresh", "early": "stale"}
    assert await layer.get("k") == "fresh"


async def test_a_loader_asking_for_its_own_key_fails_loudly(layer: Layer) -> None:
    async def loader() -> object:
        return await layer.get_or_load("k", loader)

    with anyio.fail_after(60), pytest.raises(LoaderRecursionError) as raised:
        await layer.get_or_load("k", loader)
    assert (raised.value.layer, raised.value.key) == ("tool", "k")
    assert raised.value.chain == (("tool", "k"),)
    assert "tool:'k' -> tool:'k'" in str(raised.value)
    assert "k" not in layer
    assert layer.stats().load_failures == 1


async def test_indirect_recursion_fails_loudly(layer: Layer) -> None:
    async def load_a() -> object:
        return await layer.get_or_load("b", load_b)

    async def load_b() -> object:
        return await layer.get_or_load("a", load_a)

    with anyio.fail_after(60), pytest.raises(LoaderRecursionError) as raised:
        await layer.get_or_load("a", load_a)  # a -> b -> a
    assert raised.value.key == "a"
    assert raised.value.chain == (("tool", "a"), ("tool", "b"))
    assert "tool:'a' -> tool:'b' -> tool:'a'" in str(raised.value)
    assert layer.statistics().loads_in_flight == 0


async def test_recursion_across_layers_fails_loudly(runtime: Runtime) -> None:
    tool, model = runtime.layer("tool"), runtime.layer("model")

    async def load_tool() -> object:
        return await model.get_or_load("completion", load_model)

    async def load_model() -> object:
        return await tool.get_or_load("search", load_tool)

    with anyio.fail_after(60), pytest.raises(LoaderRecursionError) as raised:
        await tool.get_or_load("search", load_tool)
    assert raised.value.chain == (("tool", "search"), ("model", "completion"))
    assert (tool.stats().load_failures, model.stats().load_failures) == (1, 1)


async def test_nested_loads_without_a_cycle_are_not_refused(runtime: Runtime) -> None:
    tool, model = runtime.layer("tool"), runtime.layer("model")
    inner = GatedLoader("inner")

    async def outer() -> object:
        return ("outer", await model.get_or_load("shared", inner))

    results: list[object] = []

    async def call(coroutine: Callable[[], Awaitable[object]]) -> None:
        results.append(await coroutine())

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            # Two outer loads and a plain caller all wait for the same inner load.
            callers.start_soon(call, lambda: tool.get_or_load("a", outer))
            callers.start_soon(call, lambda: tool.get_or_load("b", outer))
            callers.start_soon(call, lambda: model.get_or_load("shared", inner))
            await anyio.wait_all_tasks_blocked()
            assert model.statistics().load_waiters == 3
            inner.release.set()
    assert sorted(map(str, results)) == sorted(
        map(str, [("outer", "inner"), ("outer", "inner"), "inner"])
    )
    assert inner.calls == 1


async def test_a_loader_may_recover_from_its_recursion_error(layer: Layer) -> None:
    async def loader() -> object:
        try:
            return await layer.get_or_load("k", loader)
        except LoaderRecursionError:
            return "fallback"

    with anyio.fail_after(60):
        assert await layer.get_or_load("k", loader) == "fallback"
    assert await layer.get("k") == "fallback"


async def test_load_statistics(layer: Layer) -> None:
    async def slow() -> int:
        await anyio.sleep(2)
        return 1

    async def failing() -> int:
        await anyio.sleep(3)
        raise ValueError("no")

    assert await layer.get_or_load("a", slow) == 1
    with pytest.raises(ValueError, match="no"):
        await layer.get_or_load("b", failing)
    assert await layer.get_or_load("a", slow) == 1  # a hit: no load, no load time
    stats = layer.stats()
    assert (stats.load_successes, stats.load_failures) == (1, 1)
    # Virtual seconds, so exact: 2 for the success plus 3 for the failure.
    assert stats.total_load_time == pytest.approx(5.0)
    assert stats.average_load_time == pytest.approx(2.5)


async def test_a_loaded_entry_gets_the_ttl_of_the_call(layer: Layer) -> None:
    async def loader() -> str:
        await anyio.sleep(5)  # the TTL starts when the value is stored, not when asked for
        return "v"

    assert await layer.get_or_load("k", loader, ttl=10) == "v"
    await anyio.sleep(9)
    assert "k" in layer
    await anyio.sleep(1)
    assert "k" not in layer
