"""Nothing a caller passes can break the runtime: loaders, values and listeners that fail.

Each test first shows the fault reaching the caller that caused it, then that the layer and the
runtime keep serving (a read, a write, a load and a runtime-wide invalidation afterwards).
"""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

import rgruntime
from rgruntime import LoadInterruptedError, Runtime
from rgruntime.runtime.layer import Layer, new_layer
from tests.support import raise_a_stray_cancellation

pytestmark = pytest.mark.anyio


class Boom(BaseException):
    """A BaseException subclass that is neither a cancellation nor an Exception."""


async def still_serving(runtime: Runtime, layer: Layer) -> None:
    async def loader() -> str:
        return "fresh"

    await layer.set("after", 1)
    assert await layer.get("after") == 1
    assert await layer.get_or_load("loaded-after", loader) == "fresh"
    assert await runtime.invalidate(key="after") == 1
    assert runtime.is_open


async def test_a_loader_raising_a_base_exception_fails_its_waiters_only() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")

        async def loader() -> str:
            await anyio.lowlevel.checkpoint()
            raise Boom("not an Exception")

        results: list[BaseException] = []

        async def waiter() -> None:
            try:
                await layer.get_or_load("k", loader)
            except Boom as error:
                results.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(waiter)
        assert len(results) == 3
        assert layer.stats().load_failures == 1
        await still_serving(runtime, layer)


async def test_a_cancellation_no_scope_of_ours_caused_is_an_error_of_that_load() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")

        async def loader() -> str:
            await raise_a_stray_cancellation()
            return "never"

        with pytest.raises(LoadInterruptedError) as raised:
            await layer.get_or_load("k", loader)
        assert "'k'" in str(raised.value)
        assert layer.stats().load_failures == 1
        await still_serving(runtime, layer)


# asyncio futures exist on asyncio only; the test above covers the same on trio.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_loader_awaiting_a_future_someone_else_cancelled() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def loader() -> str:
            return await future

        async def cancel_soon() -> None:
            await anyio.sleep(0.01)
            future.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_soon)
            with pytest.raises(LoadInterruptedError):
                await layer.get_or_load("k", loader)
        await still_serving(runtime, layer)
        await runtime.invalidate(pattern="*")


async def test_a_value_the_sizer_cannot_weigh_fails_its_waiters_only() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        sizer_failures: list[object] = []

        def failing_sizer(value: object) -> int:
            sizer_failures.append(value)
            raise KeyError("cannot weigh this")

        # A layer whose sizer fails, as a user-supplied sizer may.
        custom, actor = new_layer(layer.config, layer.clock, sizer=failing_sizer)
        async with anyio.create_task_group() as group:
            await group.start(actor.run)

            async def loader() -> str:
                return "value"

            with pytest.raises(rgruntime.InvalidArgumentError) as raised:
                await custom.get_or_load("k", loader)
            assert raised.value.field == "size"
            assert sizer_failures == ["value"]
            # The layer goes on: a value with an explicit size needs no sizer.
            await custom.set("k2", "v", size=10)
            assert await custom.get("k2") == "v"
            group.cancel_scope.cancel()
        await still_serving(runtime, layer)


async def test_a_failing_removal_listener_is_counted_and_the_layer_goes_on() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")

        def listener(layer_name: str, key: str, reason: str) -> None:
            raise RuntimeError("listener bug")

        layer.add_removal_listener(listener)
        await layer.set("k", 1)
        assert await layer.delete("k")
        assert await layer.invalidate(key="missing") == 0
        await layer.set("k", 1)
        assert await runtime.invalidate(key="k") == 1
        assert layer.statistics().listener_failures == 2
        await still_serving(runtime, layer)


async def test_access_observers_hear_hits_misses_and_writes_in_order() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        heard: list[tuple[object, ...]] = []

        class Recorder:
            def hit(self, key: str, count: int) -> None:
                heard.append(("hit", key, count))

            def miss(self, key: str) -> None:
                heard.append(("miss", key))

            def write(self, key: str, size: int) -> None:
                heard.append(("write", key))

        class Broken:
            def hit(self, key: str, count: int) -> None:
                raise RuntimeError("observer bug")

            def miss(self, key: str) -> None:
                pass

            def write(self, key: str, size: int) -> None:
                pass

        remove = layer.add_access_observer(Recorder())
        layer.add_access_observer(Broken())
        assert layer.get_nowait("a") is None
        layer.set_nowait("a", 1)
        assert layer.get_nowait("a") == 1
        assert layer.get_nowait("a") == 1
        await layer.cleanup()
        assert heard == [("miss", "a"), ("write", "a"), ("hit", "a", 2)]
        remove()
        assert layer.get_nowait("b") is None
        await layer.cleanup()
        assert heard[-1] == ("hit", "a", 2)  # nobody listens: nothing more is heard
        await still_serving(runtime, layer)
