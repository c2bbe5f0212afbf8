"""Bad arguments to cache operations: each raises an error naming the argument, and changes nothing.

Every case runs against a layer holding a few entries (with TTLs and tags); after the bad call the
layer's counters are exactly as before and every entry still reads back as it was.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, InvalidArgumentError, Layer, Runtime
from rgruntime.errors import VALUE_LIMIT, describe_value
from rgruntime.runtime.arguments import await_loader, check_key, check_loader

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
    bad(lambda layer: layer.set(42, "v"), InvalidArgumentError, "key", "set int key"),
    bad(lambda layer: layer.set(b"k", "v"), InvalidArgumentError, "key", "set bytes key"),
    bad(lambda layer: layer.set_nowait(None, "v"), InvalidArgumentError, "key", "set None key"),
    bad(lambda layer: layer.set(["k"], "v"), InvalidArgumentError, "key", "set list key"),
    bad(lambda layer: layer.set_nowait({"k": 1}, "v"), InvalidArgumentError, "key", "dict key"),
    bad(lambda layer: layer.get(42), InvalidArgumentError, "key", "get int key"),
    bad(lambda layer: layer.get_nowait(42), InvalidArgumentError, "key", "get_nowait int key"),
    bad(lambda layer: layer.get_or_load(42, loader), InvalidArgumentError, "key", "load int key"),
    bad(lambda layer: layer.delete(42), InvalidArgumentError, "key", "delete int key"),
    bad(lambda layer: layer.delete(["k"]), InvalidArgumentError, "key", "delete list key"),
    bad(lambda layer: layer.invalidate(key=42), InvalidArgumentError, "key", "invalidate int key"),
    bad(lambda layer: layer.invalidate(key=["k"]), InvalidArgumentError, "key", "list key"),
    bad(lambda layer: layer.invalidate(keys=[42]), InvalidArgumentError, "keys", "int keys"),
    bad(lambda layer: layer.invalidate(keys=[{}]), InvalidArgumentError, "keys", "dict in keys"),
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


async def refused(layer: Layer, call: Call, error: type[Exception], field: str) -> str:
    """Make a bad call: it raises ``error`` naming ``field`` and changes nothing. Its message."""
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
    return message


@pytest.mark.parametrize(("call", "error", "field"), BAD_CALLS)
async def test_a_bad_call_names_the_argument_and_changes_nothing(
    runtime: Runtime, call: Call, error: type[Exception], field: str
) -> None:
    await refused(runtime.layer("tool"), call, error, field)


async def test_an_unhashable_key_raises_type_error(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    before = layer.stats()
    # Reads check the key on their miss path: an unhashable key is named, as on writes.
    for read in (layer.get, layer.get_nowait):
        with pytest.raises(InvalidArgumentError, match=r"^key: \['products:1'\] is not accepted"):
            await _maybe_await(read(["products:1"]))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"^key: \['products:1'\] is not accepted"):
        layer.set_nowait(["products:1"], "x")  # type: ignore[arg-type]
    # Still a TypeError, as it was before InvalidArgumentError covered keys.
    with pytest.raises(TypeError):
        layer.set_nowait({"products:1": 1}, "x")  # type: ignore[arg-type]
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


# -- huge values: messages stay short ------------------------------------------------------------

HUGE = 10_000_000  # a 10 MB value must not make a 40 MB message


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda layer: layer.set(b"k" * HUGE, "v"), "key", id="bytes key"),
        pytest.param(lambda layer: layer.set_nowait([0] * HUGE, "v"), "key", id="list key"),
        pytest.param(lambda layer: layer.set(K, 0, tags=["x" * HUGE + ":"]), "tags", id="tag"),
        pytest.param(lambda layer: layer.set(K, 0, ttl="s" * HUGE), "ttl", id="ttl"),
        pytest.param(lambda layer: layer.invalidate(keys="k" * HUGE), "keys", id="keys str"),
    ],
)
async def test_a_huge_bad_value_makes_a_short_message(
    runtime: Runtime, call: Call, field: str
) -> None:
    message = await refused(runtime.layer("tool"), call, InvalidArgumentError, field)
    shown = message.removeprefix(f"{field}: ").split(" is not accepted")[0]
    assert len(shown) <= VALUE_LIMIT + 20  # the cut repr and what it left out: "… (N chars)"
    assert len(message) < 1000


def test_describe_value_cuts_strings_before_their_repr() -> None:
    assert describe_value("short") == "'short'"
    text = describe_value("é\x00" * HUGE)
    assert text.endswith(f"… ({2 * HUGE} chars)")
    assert len(text.split("…")[0]) <= VALUE_LIMIT
    assert describe_value(b"\x00" * 300).endswith("… (300 bytes)")
    assert describe_value(10**5000) == f"<int of {(10**5000).bit_length()} bits>"
    nested = describe_value({"k" * 1000: [list(range(1000))] * 1000})
    assert len(nested) <= VALUE_LIMIT + 1


def test_a_value_whose_repr_fails_is_named_by_its_type() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(InvalidArgumentError) as raised:
        check_key(Broken())
    assert str(raised.value).startswith("key: <Broken instance at 0x")


def test_invalid_argument_error_is_a_type_error_and_a_value_error() -> None:
    # Code that caught the TypeError of a bad key, or the ValueError of a bad TTL, still does.
    assert issubclass(InvalidArgumentError, TypeError)
    assert issubclass(InvalidArgumentError, ValueError)
    assert not issubclass(rgruntime.ConfigError, TypeError)


# -- loaders -------------------------------------------------------------------------------------


async def async_with_default(value: str = "default") -> str:
    return value


async def needs_an_argument(value: str) -> str:
    return value


async def needs_a_keyword(*, value: str) -> str:
    return value


async def keyword_with_default(*, value: str = "keyword") -> str:
    return value


async def async_generator() -> AsyncIterator[str]:
    yield "not a loader"


class AsyncCallable:
    async def __call__(self) -> str:
        return "called"

    async def method(self) -> str:
        return "method"

    async def method_with_argument(self, value: str) -> str:
        return value


def returns_a_coroutine() -> Awaitable[str]:
    return async_with_default("from a sync function")


GOOD_LOADERS = [
    pytest.param(loader, "loaded", id="async def"),
    pytest.param(async_with_default, "default", id="async def with a default"),
    pytest.param(keyword_with_default, "keyword", id="keyword with a default"),
    pytest.param(functools.partial(needs_an_argument, "bound"), "bound", id="partial"),
    pytest.param(AsyncCallable(), "called", id="object with async __call__"),
    pytest.param(AsyncCallable().method, "method", id="bound async method"),
    pytest.param(functools.partial(AsyncCallable()), "called", id="partial of an object"),
    pytest.param(lambda: needs_an_argument("lambda"), "lambda", id="lambda returning a coroutine"),
    pytest.param(returns_a_coroutine, "from a sync function", id="sync function, awaitable"),
]


@pytest.mark.parametrize(("good", "expected"), GOOD_LOADERS)
async def test_loaders_that_return_an_awaitable_are_accepted(good: Any, expected: str) -> None:
    assert check_loader(good) is good
    assert await await_loader(good) == expected


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param("f", id="a string"),
        pytest.param(None, id="None"),
        pytest.param(needs_an_argument, id="async def with a required argument"),
        pytest.param(needs_a_keyword, id="async def with a required keyword"),
        pytest.param(lambda value: value, id="lambda with an argument"),
        pytest.param(AsyncCallable().method_with_argument, id="method with an argument"),
        pytest.param(async_generator, id="async generator function"),
    ],
)
def test_check_loader_refuses_what_cannot_be_a_loader(refused: object) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        check_loader(refused, field="load")
    assert raised.value.field == "load"
    assert "an async callable taking no arguments" in str(raised.value)


@pytest.mark.parametrize(
    ("sync", "kind"),
    [
        pytest.param(lambda: 5, "a plain (sync) callable", id="lambda returning a value"),
        pytest.param(dict, "a plain (sync) callable", id="a class"),
        pytest.param(functools.partial(str, "x"), "a plain (sync) callable", id="sync partial"),
    ],
)
async def test_await_loader_refuses_a_result_that_cannot_be_awaited(sync: Any, kind: str) -> None:
    # A plain function cannot be told from one returning an awaitable before it is called.
    assert check_loader(sync) is sync
    with pytest.raises(InvalidArgumentError) as raised:
        await await_loader(sync)
    message = str(raised.value)
    assert raised.value.field == "loader"
    assert f"this is {kind} and its call returned" in message
    assert "which cannot be awaited" in message


async def test_a_sync_loader_fails_its_load_and_stores_nothing(runtime: Runtime) -> None:
    layer = runtime.layer("tool")
    with pytest.raises(InvalidArgumentError) as raised:
        await layer.get_or_load("sync", lambda: "not awaitable")  # type: ignore[arg-type,return-value]
    assert raised.value.field == "loader"
    assert "sync" not in layer
    assert layer.stats().load_failures == 1
    assert layer.statistics().loads_in_flight == 0
    assert await layer.get_or_load("sync", loader) == "loaded"


async def _maybe_await(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result
