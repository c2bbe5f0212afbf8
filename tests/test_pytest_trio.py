"""rgruntime under pytest-trio's own runner and ``autojump_clock`` (not anyio's plugin).

A runtime resolves trio's clock from whoever started the run, so TTLs follow pytest-trio's
MockClock too. These tests use no fixture that depends on ``anyio_backend``: the two plugins are
never mixed in one test.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import rgruntime
from rgruntime import MISSING, LoaderRecursionError

pytestmark = pytest.mark.trio


async def test_ttls_follow_the_autojump_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with rgruntime.open_runtime() as runtime:
        tool = runtime.layer("tool")  # TTL 5 minutes
        await tool.set("weather:paris", {"temp": 21})
        await trio.sleep(299)
        assert await tool.get("weather:paris") == {"temp": 21}
        autojump_clock.jump(1)
        # No checkpoint since the jump: the actor has not run, yet the entry is not served.
        assert tool.get_nowait("weather:paris", MISSING) is MISSING
        assert tool.stats().expirations == 0
        await trio.sleep(1)
        assert tool.stats().expirations == 1
        assert trio.current_time() == 301.0


async def test_single_flight_and_recursion_under_the_autojump_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    async def slow_loader() -> str:
        nonlocal calls
        calls += 1
        await trio.sleep(30)
        return "loaded"

    async def recursive_loader() -> object:
        return await layer.get_or_load("loop", recursive_loader)

    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("model")
        results = []

        async def call() -> None:
            results.append(await layer.get_or_load("k", slow_loader))

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(call)
        assert (calls, results) == (1, ["loaded"] * 100)
        assert layer.stats().total_load_time == 30.0
        with trio.fail_after(60), pytest.raises(LoaderRecursionError):
            await layer.get_or_load("loop", recursive_loader)
