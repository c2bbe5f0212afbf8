"""Bad arguments to cache operations: each raises an error naming the argument, and changes nothing.

Every case runs against a layer holding a few entries (with TTLs and tags); after the bad call the
layer's counters are exactly as before and every entry still reads back as it was.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, InvalidArgumentError, Layer, Runtime

pytestmark = pytest.mark.anyio

STORED = {
    "products:1": ("phone", ["products:electronics:phones"]),
    "products:2": ("book", ["products:books"]),
    "weather_paris": (None, ["weather"]),
}


async def loader() -> str:
    return "loaded"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with rgruntime.open_runtime() as runtime:
        tool = runtime.layer("tool")
        for key, (value, tags) in STORED.items():
            await tool.set(key, value, ttl="10m", tags=tags)
        await tool.cleanup()
        yield runtime


def assert_intact(layer: Layer, stats_before: rgruntime.CacheStats) -> None:
    # Counters first: reading the entries back below counts hits.
    assert layer.stats() == stats_before
    assert layer.statistics().pending_writes == 0
    for key, (value, _tags) in STORED.items():
        assert layer.get_nowait(key, MISSING) == value
    assert layer.get_nowait("absent", MISSING) is MISSING


Call = Callable[[Layer], Any]
K = "products:1"  # a key that holds a value: a bad write to it must leave that value alone


def bad(call: Call, error: type[Exception], field: str, name: str) -> Any:
    return pytest.param(call, error, field, id=name)


BAD_CALLS = [
    bad(lambda layer: layer.set(42, "v"), TypeError, "key", "set int key"),
    bad(lambda layer: layer.set(b"k", "v"), TypeError, "key", "set bytes key"),
    bad(lambda layer: layer.set_nowait(None, "v"), TypeError, "key", "set None key"),
    bad(lambda layer: layer.get(42), TypeError, "key", "get int key"),
    bad(lambda layer: layer.get_nowait(42), TypeError, "key", "get_nowait int key"),
    bad(lambda layer: layer.get_or_load(42, loader), TypeError, "key", "load int key"),
    bad(lambda layer: layer.delete(42), TypeError, "key", "delete int key"),
    bad(lambda layer: layer.invalidate(key=42), TypeError, "key", "invalidate int key"),
    bad(lambda layer: layer.invalidate(keys=[42]), TypeError, "keys", "invalidate int keys"),
    bad(lambda layer: layer.invalidate(keys=K), InvalidArgumentError, "keys", "keys as str"),
    bad(lambda layer: layer.set(K, 0, tags="products"), InvalidArgumentError, "tags", "tags str"),
    bad(lambda layer: layer.set(K, 0, tags=[""]), InvalidArgumentError, "tags", "empty tag"),
    bad(lambda layer: layer.set(K, 0, tags=["a::b"]), InvalidArgumentError, "tags", "empty level"),
    bad(lambda layer: layer.set(K, 0, tags=[":x"]), InvalidArgumentError, "tags", "leading sep"),
    bad(lambda layer: layer.set(K, 0, tags=["x:"]), InvalidArgumentError, "tags", "trailing sep"),
    bad(lambda layer: layer.set(K, 0, tags=[7]), InvalidArgumentError, "tags", "tag not str"),
    bad(lambda layer: layer.set(K, 0, tags=7), InvalidArgumentError, "tags", "tags not iterable"),
    bad(lambda layer: layer.set(K, 0, ttl=-1), InvalidArgumentError, "ttl", "negative ttl"),
    bad(lambda layer: layer.set(K, 0, ttl=0), InvalidArgumentError, "ttl", "zero ttl"),
    bad(lambda layer: layer.set(K, 0, ttl="soon"), InvalidArgumentError, "ttl", "ttl in words"),
    bad(lambda layer: layer.set(K, 0, ttl=True), InvalidArgumentError, "ttl", "bool ttl"),
    bad(lambda layer: layer.set(K, 0, ttl="2h"), InvalidArgumentError, "ttl", "over max_ttl"),
    bad(lambda layer: layer.set(K, 0, size=-1), InvalidArgumentError, "size", "negative size"),
    bad(lambda layer: layer.set(K, 0, size=1.5), InvalidArgumentError, "size", "float size"),
    bad(lambda layer: layer.set_nowait(K, 0, size=True), InvalidArgumentError, "size", "bool size"),
    bad(lambda layer: layer.invalidate(), InvalidArgumentError, "invalidate()", "no criterion"),
    bad(lambda layer: layer.invalidate(pattern=""), InvalidArgumentError, "pattern", "empty glob"),
    bad(lambda layer: layer.invalidate(pattern=5), InvalidArgumentError, "pattern", "int glob"),
    bad(lambda layer: layer.invalidate(tags="q"), InvalidArgumentError, "tags", "invalidate str"),
    bad(lambda layer: layer.get_or_load("x", "f"), InvalidArgumentError, "loader", "no loader"),
    bad(
        lambda layer: layer.get_or_load("x", loader, ttl=-5),
        InvalidArgumentError,
        "ttl",
        "load ttl",
    ),
    bad(
        lambda layer: layer.get_or_load("x", loader, tags="x"),
        InvalidArgumentError,
        "tags",
        "load tags",
    ),
    bad(
        lambda layer: layer.get_or_load("x", loader, size=-1),
        InvalidArgumentError,
        "size",
        "load size",
    ),
]


async def invoke(call: Call, layer: Layer) -> None:
    result = call(layer)
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(("call", "error", "field"), BAD_CALLS)
async def test_a_bad_call_names_the_argument_and_changes_nothing(
    runtime: Runtime, call: Call, error: type[Exception], field: str
) -> None:
    layer = runtime.layer("tool")
    before = layer.stats()
    with pytest.raises(error) as raised:
        await invoke(call, layer)
    message = str(raised.value)
    assert message.startswith(f"{field}: ")
    assert "accepted" in message
    if isinstance(raised.value, InvalidArgumentError):
        assert raised.value.field == field
        assert raised.value.accepted in message
    assert_intact(layer, before)


async def test_an_unhashable_key_raises_type_error(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    before = layer.stats()
    with pytest.raises(TypeError):
        await layer.get(["products:1"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        layer.set_nowait(["products:1"], "x")  # type: ignore[arg-type]
    assert_intact(layer, before)


async def test_bad_runtime_wide_invalidation_changes_nothing(runtime: Runtime) -> None:
    before = runtime.layer("tool").stats()
    with pytest.raises(InvalidArgumentError) as raised:
        await runtime.invalidate(tags="products")  # type: ignore[arg-type]
    assert raised.value.field == "tags"
    with pytest.raises(InvalidArgumentError):
        await runtime.invalidate()
    assert_intact(runtime.layer("tool"), before)


async def test_a_bad_write_does_not_disturb_a_load_in_flight(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    release = anyio.Event()

    async def gated() -> str:
        await release.wait()
        return "loaded"

    async with anyio.create_task_group() as callers:
        callers.start_soon(layer.get_or_load, "k", gated)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(InvalidArgumentError):
            await layer.set("k", "written", ttl=-1)
        with pytest.raises(TypeError):
            await layer.delete(42)  # type: ignore[arg-type]
        assert layer.statistics().loads_in_flight == 1
        release.set()
    # A valid write or delete would have kept the result out; the bad ones did not.
    assert await layer.get("k") == "loaded"


async def test_sliding_layers_check_keys_too(runtime: Runtime) -> None:
    layer = await runtime.add_layer("sliding", sliding_ttl=True)
    with pytest.raises(TypeError, match=r"^key: 42"):
        layer.get_nowait(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^key: 42"):
        await layer.get(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^key: 42"):
        await layer.get_or_load(42, loader)  # type: ignore[arg-type]
    assert layer.stats().misses == 0
