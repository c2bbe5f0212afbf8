"""Bulk removals run in slices: other tasks run meanwhile, and the result is exact.

Invalidating, clearing or expiring many entries used to be one synchronous step (100k entries held
the event loop for seconds). Now the actor removes them a slice at a time, with a checkpoint in
between: these tests check the behaviour (another task gets turns during the call; what the call
selected is gone when it returns; what was written meanwhile, and what it did not select, is
untouched), not the time it takes (``nox -s bench -- stalls`` measures that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

import rgruntime
from rgruntime import Layer

pytestmark = pytest.mark.anyio

COUNT = 20_000


async def fill(layer: Layer) -> None:
    for i in range(COUNT):
        layer.set_nowait(f"item:{i:05d}", i, tags=[f"group:{i % 4}"], size=1000)
    layer.set_nowait("other", "kept", tags=["else"], size=1000)
    await layer.cleanup()


async def run_beside_a_ticker(
    layer: Layer, work: Callable[[], Awaitable[int]]
) -> tuple[int, int, list[str], list[str]]:
    """Run ``work`` while another task ticks and writes: its result, the ticks during it, and
    the keys the ticker wrote before the call and after it began."""
    ticks = 0
    written: list[str] = []
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            key = f"item:new:{ticks}"  # selected by the glob and the tag, but written later
            layer.set_nowait(key, ticks, tags=["group:0"], size=1000)
            written.append(key)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        ticks_before = ticks
        before = list(written)
        call = work()  # the call begins here: what is written from now on is newer
        after_start = len(written)
        removed = await call
        ticks_during = ticks - ticks_before
        done.set()
    return removed, ticks_during, before, written[after_start:]


@pytest.mark.parametrize(
    "selection",
    [{"pattern": "item:*"}, {"tags": ["group"]}, {"keys": [f"item:{i:05d}" for i in range(COUNT)]}],
    ids=["pattern", "tags", "keys"],
)
async def test_a_large_invalidation_lets_other_tasks_run_and_is_exact(
    selection: dict[str, object],
) -> None:
    async with rgruntime.open_runtime({"layers": {"bulk": {"max_entries": 100_000}}}) as runtime:
        layer = runtime.layer("bulk")
        await fill(layer)
        removed, ticks, before, after = await run_beside_a_ticker(
            layer,
            lambda: layer.invalidate(**selection),  # type: ignore[arg-type]
        )
        assert ticks > 20  # the loop served another task, again and again, while the call ran
        assert not any(f"item:{i:05d}" in layer for i in range(COUNT))
        assert after
        assert all(key in layer for key in after)  # newer than the call: kept
        assert layer.get_nowait("other") == "kept"  # not selected: untouched
        if "keys" in selection:
            assert removed == COUNT
            assert all(key in layer for key in before)  # not named: untouched
        else:
            assert removed == COUNT + len(before)  # selected, written before the call
            assert not any(key in layer for key in before)


async def test_a_large_clear_lets_other_tasks_run() -> None:
    async with rgruntime.open_runtime({"layers": {"bulk": {"max_entries": 100_000}}}) as runtime:
        layer = runtime.layer("bulk")
        await fill(layer)
        removed, ticks, before, after = await run_beside_a_ticker(layer, layer.clear)
        assert removed == COUNT + 1 + len(before)
        assert ticks > 20
        assert not any(f"item:{i:05d}" in layer for i in range(COUNT))
        assert after
        assert all(key in layer for key in after)


@pytest.mark.virtual_time
async def test_many_entries_expiring_at_once_let_other_tasks_run() -> None:
    async with rgruntime.open_runtime({"layers": {"bulk": {"max_entries": 100_000}}}) as runtime:
        layer = runtime.layer("bulk")
        for i in range(COUNT):
            layer.set_nowait(f"item:{i:05d}", i, ttl=10, size=1000)
        await layer.cleanup()
        passes = layer.statistics().maintenance_runs
        await anyio.sleep(11)  # every timer is due: the actor expires them a slice at a time
        while layer.statistics().timers:
            await anyio.lowlevel.checkpoint()
        assert layer.stats().expirations == COUNT
        # More than one pass: the expiry was cut in slices, with the loop served in between.
        assert layer.statistics().maintenance_runs > passes + 1
