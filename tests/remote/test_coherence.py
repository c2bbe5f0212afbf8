"""Near caches stay coherent: what one runtime changes, the others stop serving.

Two runtimes on one store stand for two processes on one server (tests/remote/test_processes.py
runs two real processes). Each check waits, bounded, for the other runtime to hear of a change:
the news travels through the store's invalidation channel, so it lands a moment after the change
returns. Memcached has no channel: near copies there live ``near_ttl`` (1 s by default).
"""

from __future__ import annotations

import anyio
import pytest

from rgruntime import MISSING, Layer
from rgruntime.runtime.dependencies import record_read, recording
from rgruntime.stores import RemoteStore
from tests.remote.conftest import LayerBackend, eventually

pytestmark = pytest.mark.anyio


async def _held_near(layer: Layer, key: str) -> None:
    """Read ``key`` until ``layer`` keeps a near copy of it."""

    async def held() -> bool:
        await layer.get(key)
        return layer.get_nowait(key, MISSING) is not MISSING

    await eventually(held)


async def test_an_overwrite_replaces_near_copies_elsewhere(
    coherent_backend: LayerBackend,
) -> None:
    async with coherent_backend.runtime() as first, coherent_backend.runtime() as second:
        writer, reader = first.layer("response"), second.layer("response")
        await writer.set("k", "old")
        await _held_near(reader, "k")
        await writer.set("k", "new")
        await eventually(lambda: reader.get_nowait("k", MISSING) != "old")
        assert await reader.get("k") == "new"


async def test_deletes_tags_patterns_and_clears_reach_other_runtimes(
    coherent_backend: LayerBackend,
) -> None:
    async with coherent_backend.runtime() as first, coherent_backend.runtime() as second:
        writer, reader = first.layer("tool"), second.layer("tool")
        await writer.set("deleted", 1)
        await writer.set("tagged", 2, tags=["products:phones"])
        await writer.set("weather_paris", 3)
        await writer.set("cleared", 4)
        for key in ("deleted", "tagged", "weather_paris", "cleared"):
            await _held_near(reader, key)

        async def gone(key: str) -> None:
            await eventually(lambda: reader.get_nowait(key, MISSING) is MISSING)
            assert await reader.get(key, MISSING) is MISSING

        await writer.delete("deleted")
        await gone("deleted")
        await writer.invalidate(tags=["products"])
        await gone("tagged")
        await writer.invalidate(pattern="weather_*")
        await gone("weather_paris")
        await writer.clear()
        await gone("cleared")
        # A runtime-wide invalidation (every layer) reaches the others too.
        await writer.set("again", 5, tags=["t"])
        await _held_near(reader, "again")
        await first.invalidate(tags=["t"])
        await gone("again")


async def test_a_reader_never_keeps_a_value_changed_during_its_read(
    coherent_backend: LayerBackend,
) -> None:
    # Many rounds of a read racing a write: whatever the order, once the write's news is in,
    # the reader serves the new value.
    async with coherent_backend.runtime() as first, coherent_backend.runtime() as second:
        writer, reader = first.layer("model"), second.layer("model")
        for round_ in range(30):
            async with anyio.create_task_group() as group:
                group.start_soon(reader.get, "k")
                group.start_soon(writer.set, "k", round_)

            async def current(expected: int = round_) -> bool:
                return bool(await reader.get("k") == expected)

            await eventually(current)
            await anyio.sleep(0.02)  # the write's news is in by now, or it is late: then the
            assert reader.get_nowait("k", round_) == round_  # near copy must still be current


async def test_a_crashed_lease_holder_delays_a_load_by_its_lease_only(
    coherent_backend: LayerBackend,
) -> None:
    async with coherent_backend.runtime({"layers": {"tool": {"lease_ttl": 30}}}) as runtime:
        store: RemoteStore = coherent_backend.store()
        async with store:
            # Another "process" took the key's lease for 0.5 s, and died without giving it back.
            assert await store.acquire_lease("tool:k", 0.5) is not None
            calls = 0

            async def loader() -> str:
                nonlocal calls
                calls += 1
                return "loaded"

            with anyio.fail_after(5):
                assert await runtime.layer("tool").get_or_load("k", loader) == "loaded"
            assert calls == 1


@pytest.fixture
def memcached_backend(request: pytest.FixtureRequest) -> LayerBackend:
    return LayerBackend("memcached", request)


async def test_memcached_near_copies_live_near_ttl(memcached_backend: LayerBackend) -> None:
    async with memcached_backend.runtime() as first, memcached_backend.runtime() as second:
        writer, reader = first.layer("response"), second.layer("response")
        await writer.set("k", "old")
        await _held_near(reader, "k")
        assert reader.statistics().store is not None
        assert reader.statistics().store.coherent is False  # type: ignore[union-attr]
        await writer.set("k", "new")
        await eventually(lambda: reader.get_nowait("k", MISSING) != "old")
        assert await reader.get("k") == "new"


async def test_an_invalidation_elsewhere_takes_what_was_computed_from_it(
    coherent_backend: LayerBackend,
) -> None:
    # The answer was computed here from a tool result; another process invalidates the tool
    # result: this runtime hears of it, its dependency graph removes the answer, and the removal
    # reaches the store and every other runtime.
    async with coherent_backend.runtime() as here, coherent_backend.runtime() as elsewhere:
        await here.layer("tool").set("weather", {"temp": 17})
        with recording(here.dependencies) as reads:
            await here.layer("tool").get("weather")
            record_read("tool", "weather")
        assert here.dependencies.depend(("response", "answer"), reads)
        await here.layer("response").set("answer", "17 degrees")
        await _held_near(elsewhere.layer("response"), "answer")

        await elsewhere.layer("tool").invalidate(key="weather")

        async def answer_gone() -> bool:
            gone_here = await here.layer("response").get("answer", MISSING) is MISSING
            gone_there = await elsewhere.layer("response").get("answer", MISSING) is MISSING
            return gone_here and gone_there

        await eventually(answer_gone)
