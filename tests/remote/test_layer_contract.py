"""The layer contract on every backend: the embedded default, the in-process reference store,
Redis, a Redis Cluster and Memcached (real servers), on asyncio and on trio.

A remote layer keeps the in-process layer's API and behaviour; where a store adds something
(another runtime on the same store sees the entries) or refuses something (a value the serializer
cannot encode), the test says so for that backend.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rgruntime import MISSING, InvalidArgumentError, Layer
from tests.remote.conftest import LayerBackend, eventually

pytestmark = pytest.mark.anyio


async def test_reads_writes_and_deletes(layer_backend: LayerBackend) -> None:
    async with layer_backend.runtime() as runtime:
        layer = runtime.layer("tool")
        assert await layer.get("absent") is None
        assert await layer.get("absent", MISSING) is MISSING
        await layer.set("weather:paris", {"temp": 21})
        assert await layer.get("weather:paris") == {"temp": 21}
        assert layer.get_nowait("weather:paris") == {"temp": 21}
        await layer.set("weather:paris", {"temp": 22})
        assert await layer.get("weather:paris") == {"temp": 22}
        await layer.set("nothing", None)
        assert await layer.get("nothing", MISSING) is None
        assert await layer.delete("weather:paris") is True
        assert await layer.delete("weather:paris") is False
        assert await layer.get("weather:paris", MISSING) is MISSING
        stats = layer.stats()
        assert (stats.hits, stats.misses) == (4, 3)


async def test_another_runtime_on_the_same_store_sees_the_entries(
    layer_backend: LayerBackend,
) -> None:
    async with layer_backend.runtime() as first, layer_backend.runtime() as second:
        await first.layer("response").set("answer", [1, "two", 3.0], ttl=100, tags=["a:b"])
        found = await second.layer("response").get("answer", MISSING)
        if not layer_backend.remote:
            assert found is MISSING  # each embedded runtime keeps its own entries
            return
        assert found == [1, "two", 3.0]
        assert second.layer("response").stats().hits == 1
        # A read that overlaps the news of a change (here: the first runtime's own write) does
        # not keep a near copy; the next read does.
        with anyio.fail_after(5):
            while second.layer("response").get_nowait("answer") is None:
                await second.layer("response").get("answer")
        left = second.layer("response").ttl("answer")  # what is left of its TTL
        assert left is not None
        if layer_backend.kind == "memcached":
            assert 0 < left <= 1  # near copies live 1 s there: no invalidation channel
        else:
            assert 90 < left <= 100
        # Layers do not share keys: the same key in another layer is another entry.
        assert await second.layer("tool").get("answer", MISSING) is MISSING
        await first.layer("response").delete("answer")

        async def gone() -> bool:  # the other runtime hears of it (Memcached: near_ttl, 1 s)
            return await second.layer("response").get("answer", MISSING) is MISSING

        await eventually(gone)


async def test_single_flight_loads_once_and_failures_are_not_cached(
    layer_backend: LayerBackend,
) -> None:
    async with layer_backend.runtime() as runtime:
        layer = runtime.layer("tool")
        calls = 0

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await anyio.sleep(0.05)
            return "loaded"

        results: list[str] = []

        async def call() -> None:
            results.append(await layer.get_or_load("k", loader))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(call)
        assert results == ["loaded"] * 10
        assert calls == 1
        assert await layer.get_or_load("k", loader) == "loaded"
        assert calls == 1

        async def failing() -> str:
            raise ValueError("no")

        for _ in range(2):
            with pytest.raises(ValueError, match="no"):
                await layer.get_or_load("bad", failing)
        assert await layer.get("bad", MISSING) is MISSING
        assert layer.stats().load_failures == 2


async def test_a_load_done_by_one_runtime_serves_the_others(layer_backend: LayerBackend) -> None:
    async with layer_backend.runtime() as first, layer_backend.runtime() as second:
        calls = 0

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await anyio.sleep(0.2)
            return "computed once"

        results: dict[str, Any] = {}

        async def call(name: str, layer: Layer) -> None:
            results[name] = await layer.lookup("k", loader)

        async with anyio.create_task_group() as group:
            group.start_soon(call, "first", first.layer("model"))
            group.start_soon(call, "second", second.layer("model"))
        assert {lookup.value for lookup in results.values()} == {"computed once"}
        if layer_backend.remote:
            assert calls == 1  # the lease: one runtime loaded, the other read its result
            assert sorted(lookup.source for lookup in results.values()) == ["hit", "loaded"]
        else:
            assert calls == 2


async def test_invalidation_by_key_pattern_and_hierarchical_tags(
    layer_backend: LayerBackend,
) -> None:
    async with layer_backend.runtime() as runtime, layer_backend.runtime() as other:
        layer = runtime.layer("tool")
        for key, tags in [
            ("phone", ["products:electronics:phones"]),
            ("tv", ["products:electronics"]),
            ("shirt", ["productsX"]),
            ("weather_paris", []),
            ("weather_rome", []),
            ("news", []),
        ]:
            await layer.set(key, key, tags=tags)
        assert await layer.invalidate(tags=["products"]) == 2
        assert await layer.invalidate(pattern="weather_*") == 2
        assert await layer.invalidate(key="news") == 1
        for view in (layer, other.layer("tool")):
            assert await view.get("phone", MISSING) is MISSING
            assert await view.get("tv", MISSING) is MISSING
            assert await view.get("weather_rome", MISSING) is MISSING
            assert await view.get("news", MISSING) is MISSING
        # productsX is not under products: it stays, here and (with a store) in the other.
        assert await layer.get("shirt") == "shirt"
        expected = "shirt" if layer_backend.remote else MISSING
        assert await other.layer("tool").get("shirt", MISSING) == expected


async def test_clear_removes_one_layer_only(layer_backend: LayerBackend) -> None:
    async with layer_backend.runtime() as runtime, layer_backend.runtime() as other:
        await runtime.layer("tool").set("t", 1)
        await runtime.layer("model").set("m", 2)
        await runtime.layer("tool").clear()
        assert await runtime.layer("tool").get("t", MISSING) is MISSING
        assert await other.layer("tool").get("t", MISSING) is MISSING
        assert await runtime.layer("model").get("m") == 2
        expected = 2 if layer_backend.remote else MISSING
        assert await other.layer("model").get("m", MISSING) == expected


async def test_entries_expire_with_their_ttl(layer_backend: LayerBackend) -> None:
    # Real time (the servers keep it): only "gone once the TTL is over" is checked, which no
    # slow machine can turn around.
    async with layer_backend.runtime() as runtime, layer_backend.runtime() as other:
        layer = runtime.layer("tool")
        await layer.set("short", 1, ttl=0.3)
        await layer.set("long", 2, ttl=300)
        await anyio.sleep(0.5)
        for view in (layer, other.layer("tool")):
            assert await view.get("short", MISSING) is MISSING
        assert await layer.get("long") == 2


async def test_a_value_the_store_cannot_encode_changes_nothing(
    layer_backend: LayerBackend,
) -> None:
    async with layer_backend.runtime() as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", "kept")
        unencodable = object()
        if not layer_backend.remote:
            await layer.set("k", unencodable)  # in process, any object can be cached
            assert await layer.get("k") is unencodable
            return
        with pytest.raises(InvalidArgumentError, match="value"):
            await layer.set("k", unencodable)
        with pytest.raises(InvalidArgumentError, match="value"):
            layer.set_nowait("k", {"nested": [unencodable]})
        assert await layer.get("k") == "kept"

        async def loader() -> object:
            return unencodable

        with pytest.raises(InvalidArgumentError):
            await layer.get_or_load("loaded", loader)
        assert await layer.get("loaded", MISSING) is MISSING
        assert layer.stats().load_failures == 0  # the loader did not fail: its value did


async def test_bad_arguments_raise_clear_errors(layer_backend: LayerBackend) -> None:
    async with layer_backend.runtime() as runtime:
        layer = runtime.layer("tool")
        with pytest.raises(InvalidArgumentError, match="key"):
            await layer.get(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="key"):
            await layer.set(42, 1)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="ttl"):
            await layer.set("k", 1, ttl=-1)
        with pytest.raises(InvalidArgumentError, match="tags"):
            await layer.set("k", 1, tags="products")
        assert await layer.get("k", MISSING) is MISSING


async def test_a_cancelled_caller_leaves_the_load_to_the_others(
    layer_backend: LayerBackend,
) -> None:
    async with layer_backend.runtime() as runtime:
        layer = runtime.layer("tool")
        release = anyio.Event()

        async def loader() -> str:
            await release.wait()
            return "done"

        results: list[str] = []

        async def waiter() -> None:
            results.append(await layer.get_or_load("k", loader))

        leaving = anyio.CancelScope()

        async def leaver() -> None:
            with leaving:
                await layer.get_or_load("k", loader)

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            group.start_soon(leaver)
            await anyio.sleep(0.05)
            leaving.cancel()
            await anyio.sleep(0.05)
            release.set()
        assert results == ["done"]
        assert await layer.get("k") == "done"
