"""TTLs in virtual time: defaults, overrides, max_ttl, sliding TTLs, and expiry before the timer.

Every test here runs on autojump virtual clocks (trio's MockClock, looptime on asyncio): sleeping
an hour takes no real time, and the results do not depend on how fast the machine is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, InvalidArgumentError, Layer, Runtime
from tests.support import jump_clock

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

BUILTIN_TTLS = {"response": 3600, "model": 86400, "tool": 300, "memory": 900}


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with rgruntime.open_runtime() as runtime:
        yield runtime


async def test_the_clocks_are_virtual_and_the_layers_follow_them(runtime: Runtime) -> None:
    start = anyio.current_time()
    await anyio.sleep(7 * 86400)
    assert anyio.current_time() - start == 7 * 86400
    # The clock a layer resolved when the runtime opened reads the same virtual time.
    for layer in runtime.layers.values():
        assert layer._now() == anyio.current_time()


@pytest.mark.parametrize(("name", "ttl"), sorted(BUILTIN_TTLS.items()))
async def test_each_builtin_layer_expires_at_its_default_ttl(
    runtime: Runtime, name: str, ttl: int
) -> None:
    layer = runtime.layer(name)
    await layer.set("k", "v")
    await anyio.sleep(ttl - 1)
    assert await layer.get("k") == "v"
    await anyio.sleep(1)
    assert await layer.get("k", MISSING) is MISSING


async def test_session_entries_do_not_expire(runtime: Runtime) -> None:
    session = runtime.layer("session")
    await session.set("k", "v")
    # 150 days: looptime's clock stops firing timers past 2**24 s (float spacing exceeds
    # asyncio's clock resolution there), so virtual time in this suite stays below that.
    await anyio.sleep(150 * 86400)
    assert await session.get("k") == "v"
    assert session.statistics().timers == 0


@pytest.mark.parametrize(
    ("ttl", "seconds"), [(10, 10), (2.5, 2.5), ("45s", 45), ("5m", 300), ("500ms", 0.5)]
)
async def test_a_write_may_set_its_own_ttl(runtime: Runtime, ttl: object, seconds: float) -> None:
    layer = runtime.layer("tool")
    await layer.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    await anyio.sleep(seconds / 2)
    assert "k" in layer
    await anyio.sleep(seconds / 2)
    assert "k" not in layer


async def test_max_ttl_is_enforced(runtime: Runtime) -> None:
    tool = runtime.layer("tool")  # max_ttl 1 h
    await tool.set("k", "v")
    await tool.set("longest", "v", ttl="1h")
    for too_long in (3601, "2h", "1d"):
        with pytest.raises(InvalidArgumentError) as raised:
            await tool.set("k", "new", ttl=too_long)  # type: ignore[arg-type]
        assert raised.value.field == "ttl"
        assert raised.value.value == too_long
        assert "max_ttl (3600 s)" in str(raised.value)
    assert await tool.get("k") == "v"
    response = runtime.layer("response")  # max_ttl 24 h
    await response.set("k", "v", ttl=86400)
    with pytest.raises(InvalidArgumentError):
        await response.set("k", "v", ttl=86401)
    custom = await runtime.add_layer("notes", ttl="5m", max_ttl="10m")
    with pytest.raises(InvalidArgumentError):
        await custom.set("k", "v", ttl="11m")


async def test_get_or_load_enforces_max_ttl(runtime: Runtime) -> None:
    async def loader() -> str:
        raise AssertionError("must not run")

    with pytest.raises(InvalidArgumentError):
        await runtime.layer("tool").get_or_load("k", loader, ttl="2h")


async def test_a_new_write_restarts_the_ttl(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    await layer.set("k", 1, ttl=10)
    await anyio.sleep(8)
    await layer.set("k", 2, ttl=10)
    await anyio.sleep(8)
    assert await layer.get("k") == 2
    await layer.cleanup()
    assert layer.statistics().timers == 1
    assert layer.stats().expirations == 0


async def test_hits_do_not_extend_the_ttl_by_default(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    assert layer.config.sliding_ttl is False
    await layer.set("k", "v", ttl=10)
    for _ in range(4):
        await anyio.sleep(2)
        assert await layer.get("k") == "v"
    await anyio.sleep(2)
    assert await layer.get("k", MISSING) is MISSING


async def test_sliding_ttl_restarts_on_every_hit(runtime: Runtime) -> None:
    layer = await runtime.add_layer("sliding", ttl=10, sliding_ttl=True)
    await layer.set("k", "v")
    # Hits every 8 s keep it alive for well past its TTL, whatever the read method.
    for _ in range(3):
        await anyio.sleep(8)
        assert await layer.get("k") == "v"
        await anyio.sleep(8)
        assert layer.get_nowait("k") == "v"
        await anyio.sleep(8)
        assert await layer.get_or_load("k", _never_called) == "v"
    # The actor's timers fired in between and found the deadline moved: nothing expired yet.
    assert layer.stats().expirations == 0
    await anyio.sleep(10)
    assert "k" not in layer
    await layer.cleanup()
    assert layer.stats().expirations == 1
    assert layer.statistics().timers == 0


async def _never_called() -> object:
    raise AssertionError("the loader ran although the key was cached")


async def test_sliding_ttl_from_the_runtime_config() -> None:
    async with rgruntime.open_runtime({"sliding_ttl": True}) as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", "v", ttl=10)
        await anyio.sleep(9)
        assert await layer.get("k") == "v"
        await anyio.sleep(9)
        assert await layer.get("k") == "v"


async def test_an_expired_entry_is_never_served_even_before_the_timer_fires(
    runtime: Runtime,
) -> None:
    layer = runtime.layer("tool")
    await layer.set("k", "v", ttl=10)
    await layer.set("still-live", "v", ttl=11)
    await layer.cleanup()
    jump_clock(10)
    # No checkpoint since the jump: the actor cannot have run, the entry is still in the map...
    assert layer.stats().entries == 2
    assert layer.stats().expirations == 0
    # ...and yet no read serves it.
    assert layer.get_nowait("k", MISSING) is MISSING
    assert await layer.get("k", MISSING) is MISSING
    assert "k" not in layer
    assert layer.get_nowait("still-live") == "v"
    assert layer.stats().expirations == 0
    await layer.cleanup()
    assert layer.stats().expirations == 1
    assert layer.stats().entries == 1


async def test_get_or_load_reloads_an_expired_entry(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    await layer.set("k", "old", ttl=10)
    jump_clock(10)

    async def loader() -> str:
        return "new"

    assert await layer.get_or_load("k", loader) == "new"
    assert await layer.get("k") == "new"


async def test_the_actor_expires_entries_on_its_own_and_removes_their_timers(
    runtime: Runtime,
) -> None:
    layer = runtime.layer("tool")
    for i in range(10):
        await layer.set(f"k{i}", i, ttl=10 + i)
    await layer.cleanup()
    assert layer.statistics().timers == 10
    # No cleanup(): the actor's own timers do the work. (Waking at 15.5, not at 15: a task
    # waking at the very deadline of k5 may run before or after the actor's timer.)
    await anyio.sleep(15.5)
    assert layer.stats().expirations == 6
    assert layer.stats().entries == 4
    assert layer.statistics().timers == 4
    await anyio.sleep(100)
    stats, statistics = layer.stats(), layer.statistics()
    assert (stats.expirations, stats.entries, stats.size_bytes) == (10, 0, 0)
    assert (statistics.timers, statistics.policy_entries) == (0, 0)


async def test_a_nearer_deadline_rearms_the_actors_timer(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    await layer.set("far", "v", ttl=100)
    await layer.cleanup()  # the actor now sleeps until t=100
    await layer.set("near", "v", ttl=10)
    await anyio.sleep(11)
    # Expired by the actor at t=10, without a cleanup.
    assert layer.stats().expirations == 1
    assert layer.stats().entries == 1


async def test_deleted_and_overwritten_entries_leave_no_timer(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    for i in range(5):
        await layer.set(f"k{i}", i, ttl=10)
    await layer.set("k0", "again", ttl=20)
    await layer.delete("k1")
    await layer.invalidate(key="k2")
    await layer.cleanup()
    assert layer.statistics().timers == 3
    await anyio.sleep(30)
    assert layer.stats().expirations == 3  # k0 (its second life), k3, k4


async def test_runtime_default_ttl_applies_to_custom_layers() -> None:
    async with rgruntime.open_runtime({"default_ttl": "1m"}) as runtime:
        notes = await runtime.add_layer("notes")
        await notes.set("k", "v")
        await anyio.sleep(59)
        assert "k" in notes
        await anyio.sleep(1)
        assert "k" not in notes


async def test_expired_entries_leave_a_bounded_layer_without_eviction() -> None:
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 3}}}) as runtime:
        layer = runtime.layer("small")
        for i in range(3):
            await layer.set(f"k{i}", i, ttl=5)
        await anyio.sleep(5)
        await layer.set("fresh", 1, ttl=5)
        await layer.cleanup()
        stats = layer.stats()
        assert (stats.expirations, stats.evictions, stats.entries) == (3, 0, 1)


@pytest.mark.parametrize("strategy", ["lru", "ttl"])
async def test_ttls_work_with_every_strategy(strategy: str) -> None:
    async with rgruntime.open_runtime({"strategy": strategy}) as runtime:
        layer: Layer = runtime.layer("tool")
        await layer.set("k", "v", ttl=3)
        await anyio.sleep(3)
        assert "k" not in layer
        await anyio.sleep(1)
        assert layer.stats().expirations == 1
