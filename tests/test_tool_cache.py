"""``@cache`` for tools: the guide's WeatherTool, keys, options, errors, instances, single
flight."""

from __future__ import annotations

import gc
import inspect
import weakref
from typing import Any

import anyio
import pytest

import rgruntime
from rgruntime import ConfigError, InvalidArgumentError, RunContext
from rgruntime.tools import NoRuntimeError, Tool, cache, cache_info, passthrough, use_runtime

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


class WeatherTool(Tool):
    """The guide's tool, with a counter standing in for the weather API."""

    def __init__(self) -> None:
        self.fetches: list[str] = []

    async def fetch_weather(self, location: str) -> dict[str, Any]:
        self.fetches.append(location)
        await anyio.sleep(1)  # the API's latency: long enough for concurrent calls to overlap
        return {"location": location, "temp": 17}

    @cache(ttl=300, key_params=["location"])
    async def get_weather(self, location: str, units: str = "metric") -> dict[str, Any]:
        """The weather at ``location``."""
        return await self.fetch_weather(location)


# -- the wrapper is the function, as frameworks see it ----------------------------------------


def test_the_wrapper_keeps_signature_name_docstring_and_is_a_coroutine_function() -> None:
    async def search(query: str, limit: int = 5) -> list[str]:
        """Search the web."""
        return [query] * limit

    wrapped = cache(ttl="5m")(search)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "search"
    assert wrapped.__doc__ == "Search the web."
    assert inspect.signature(wrapped) == inspect.signature(search)
    assert wrapped.__wrapped__ is search  # type: ignore[attr-defined]

    method = WeatherTool.get_weather
    assert inspect.iscoroutinefunction(method)
    assert method.__name__ == "get_weather"
    assert method.__qualname__ == "WeatherTool.get_weather"
    assert method.__doc__ == "The weather at ``location``."
    assert list(inspect.signature(method).parameters) == ["self", "location", "units"]
    assert inspect.iscoroutinefunction(WeatherTool().get_weather)  # bound, too
    info = cache_info(WeatherTool().get_weather)
    assert info is not None
    assert info.settings.ttl == 300


# -- the guide's WeatherTool: hits, invalidation, a miss ----------------------------------------


async def test_weather_tool_hits_then_invalidation_by_pattern_then_a_miss() -> None:
    async with rgruntime.open_runtime() as runtime:
        tool = WeatherTool()
        assert await tool.get_weather("paris") == {"location": "paris", "temp": 17}
        assert await tool.get_weather("paris") == {"location": "paris", "temp": 17}
        assert await tool.get_weather(location="paris", units="imperial")  # not a key parameter
        assert tool.fetches == ["paris"]
        # Another instance of the tool shares the results (instances are interchangeable).
        await WeatherTool().get_weather("paris")
        assert tool.fetches == ["paris"]
        assert runtime.layer("tool").stats().hits == 3

        # Tool result keys start with the tool's name: the guide's pattern selects them.
        assert await runtime.invalidate(pattern="weather_*") == 1
        await tool.get_weather("paris")
        assert tool.fetches == ["paris", "paris"]


async def test_the_result_expires_after_its_ttl() -> None:
    async with rgruntime.open_runtime():
        tool = WeatherTool()
        await tool.get_weather("oslo")
        await anyio.sleep(298)
        await tool.get_weather("oslo")
        assert tool.fetches == ["oslo"]
        await anyio.sleep(2)
        await tool.get_weather("oslo")
        assert tool.fetches == ["oslo", "oslo"]


async def test_concurrent_identical_calls_run_the_tool_once() -> None:
    async with rgruntime.open_runtime():
        tool = WeatherTool()
        results: list[dict[str, Any]] = []

        async def ask() -> None:
            results.append(await tool.get_weather("rome"))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(ask)
        assert tool.fetches == ["rome"]
        assert results == [{"location": "rome", "temp": 17}] * 10


# -- keys ----------------------------------------------------------------------------------------


async def test_without_key_params_every_parameter_is_in_the_key() -> None:
    calls: list[tuple[str, int]] = []

    @cache
    async def search(query: str, limit: int = 5) -> list[str]:
        calls.append((query, limit))
        return [query] * limit

    async with rgruntime.open_runtime():
        await search("cats")
        await search("cats", limit=5)  # the same call: defaults are bound
        await search(query="cats", limit=2)
        await search("dogs")
    assert calls == [("cats", 5), ("cats", 2), ("dogs", 5)]


async def test_context_parameters_are_not_in_the_key() -> None:
    calls: list[str] = []

    @cache(skip_params=["request_id"])
    async def lookup(context: RunContext, sku: str, request_id: str) -> str:
        calls.append(sku)
        return f"{sku} in stock"

    async with rgruntime.open_runtime():
        plan = cache_info(lookup)
        assert plan is not None
        assert plan.plan.key_params == ("sku",)
        for request_id in ("r1", "r2"):
            assert await lookup(None, "A1", request_id) == "A1 in stock"  # type: ignore[arg-type]
    assert calls == ["A1"]


async def test_cache_scope_and_version_separate_results_but_never_hold_the_instance() -> None:
    class Converter(Tool):
        version = 1

        def __init__(self, units: str) -> None:
            self.units = units

        def cache_scope(self) -> str:
            return self.units

        @cache
        async def convert(self, value: float) -> str:
            return f"{value} {self.units}"

    async with rgruntime.open_runtime() as runtime:
        assert await Converter("km").convert(3) == "3 km"
        assert await Converter("mi").convert(3) == "3 mi"
        keys = sorted(runtime.layer("tool")._entries)
        assert len(keys) == 2
        assert all(key.startswith("converter.convert:") for key in keys)
        Converter.version = 2
        assert await Converter("km").convert(3) == "3 km"
        assert runtime.layer("tool").stats().entries == 3


async def test_a_method_cache_does_not_keep_its_instance_alive() -> None:
    async with rgruntime.open_runtime() as runtime:
        tool = WeatherTool()
        await tool.get_weather("lima")
        await tool.get_weather("lima")
        await runtime.layer("tool").cleanup()
        alive = weakref.ref(tool)
        del tool
        gc.collect()
        assert alive() is None
        assert runtime.layer("tool").stats().entries == 1


# -- options -----------------------------------------------------------------------------------


async def test_none_is_cached_only_when_asked() -> None:
    calls: list[str] = []

    @cache
    async def find(name: str) -> str | None:
        calls.append(name)
        return None

    @cache(cache_none=True)
    async def find_cached(name: str) -> str | None:
        calls.append(f"cached {name}")
        return None

    async with rgruntime.open_runtime():
        for _ in range(2):
            assert await find("x") is None
            assert await find_cached("x") is None
    assert calls == ["x", "cached x", "x"]


async def test_tags_static_or_from_the_arguments_and_hierarchical_invalidation() -> None:
    calls: list[str] = []

    @cache(tags=lambda category, sku: [f"products:{category}:{sku}"], name="price")
    async def price(category: str, sku: str) -> int:
        calls.append(sku)
        return 999

    @cache(tags=["catalog"], name="catalog_page")
    async def page(number: int) -> str:
        calls.append(f"page {number}")
        return "<html>"

    async with rgruntime.open_runtime() as runtime:
        await price("electronics", "phone")
        await price("furniture", "chair")
        await page(1)
        # A parent tag removes its children.
        assert await runtime.invalidate(tags=["products:electronics"]) == 1
        assert await runtime.invalidate(tags=["catalog"]) == 1
        # Every result is tagged with its tool's name too.
        assert await runtime.invalidate(tags=["tool:price"]) == 1
        await price("electronics", "phone")
        await page(1)
    assert calls == ["phone", "chair", "page 1", "phone", "page 1"]


async def test_another_layer_and_a_ttl_with_a_unit() -> None:
    @cache(layer="memory", ttl="5m")
    async def recall(topic: str) -> str:
        return f"notes on {topic}"

    async with rgruntime.open_runtime() as runtime:
        await recall("pricing")
        assert runtime.layer("memory").stats().entries == 1
        assert runtime.layer("tool").stats().entries == 0
        await anyio.sleep(301)
        assert runtime.layer("memory").stats().entries == 0


async def test_strategy_none_and_enabled_false_run_every_time() -> None:
    calls: list[str] = []

    @cache(strategy="none")
    async def execute_code(source: str) -> str:
        calls.append(source)
        return "ok"

    @cache(enabled=False)
    async def roll(sides: int) -> int:
        calls.append(f"roll {sides}")
        return 4

    for _ in range(2):  # no runtime needed either
        await execute_code("print(1)")
        await roll(6)
    assert calls == ["print(1)", "roll 6"] * 2


# -- no runtime ------------------------------------------------------------------------------


async def test_with_no_runtime_a_clear_error_unless_pass_through_is_asked_for() -> None:
    tool = WeatherTool()
    with pytest.raises(NoRuntimeError, match=r"get_weather\(\) is cached .* no runtime is open"):
        await tool.get_weather("paris")
    with passthrough():
        assert await tool.get_weather("paris") == {"location": "paris", "temp": 17}
        assert await tool.get_weather("paris") == {"location": "paris", "temp": 17}
    assert tool.fetches == ["paris", "paris"]

    @cache(passthrough=True)
    async def always(x: int) -> int:
        return x

    assert await always(3) == 3


async def test_use_runtime_chooses_among_open_runtimes() -> None:
    async with rgruntime.open_runtime() as first, rgruntime.open_runtime() as second:
        tool = WeatherTool()
        with use_runtime(first):
            await tool.get_weather("quito")
        await tool.get_weather("quito")  # the innermost runtime entered is current here
        assert first.layer("tool").stats().entries == 1
        assert second.layer("tool").stats().entries == 1


# -- bad input: a clear error, nothing lost -----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "accepted"),
    [
        ({"ttl": -1}, "cache.ttl", "positive"),
        ({"ttl": "soon"}, "cache.ttl", "positive"),
        ({"strategy": "fuzzy"}, "cache.strategy", "'exact', 'semantic', 'none'"),
        ({"key_params": "location"}, "cache.key_params", "list of parameter names"),
        ({"tags": "products"}, "cache.tags", "a list of non-empty strings"),
        ({"cache_none": "yes"}, "cache.cache_none", "True or False"),
        ({"similarity_threshold": 2}, "cache.similarity_threshold", "between 0 and 1"),
    ],
)
def test_bad_options_name_the_field_the_value_and_what_is_accepted(
    options: dict[str, Any], field: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        cache(**options)
    assert raised.value.field == field
    assert raised.value.value == next(iter(options.values()))
    assert accepted in raised.value.accepted


def test_key_params_are_checked_against_the_signature() -> None:
    async def get_weather(self: object, location: str) -> dict[str, Any]:
        return {}

    with pytest.raises(ConfigError) as raised:
        cache(key_params=["city"])(get_weather)
    assert (raised.value.field, raised.value.value) == ("cache.key_params", "city")
    assert raised.value.accepted.startswith("a parameter of ")
    assert raised.value.accepted.endswith("<locals>.get_weather: location")
    with pytest.raises(ConfigError, match=r"cache\.key_params"):
        cache(key_params=["self"])(get_weather)  # the instance is never part of a key

    def not_async(location: str) -> None: ...

    with pytest.raises(ConfigError, match="async def"):
        cache()(not_async)  # type: ignore[type-var]


async def test_a_bad_call_loses_nothing_stored() -> None:
    @cache
    async def describe(thing: object) -> str:
        return "described"

    async with rgruntime.open_runtime() as runtime:
        tool = WeatherTool()
        await tool.get_weather("paris")
        await describe("a str is JSON")
        with pytest.raises(InvalidArgumentError) as raised:
            await describe(object())  # not JSON: it cannot be part of a key
        assert "key parameter 'thing'" in raised.value.field
        with pytest.raises(TypeError, match="get_weather"):
            await tool.get_weather()  # type: ignore[call-arg]
        assert runtime.layer("tool").stats().entries == 2
        await tool.get_weather("paris")
        assert tool.fetches == ["paris"]


# -- cancellation ------------------------------------------------------------------------------


async def test_a_cancelled_caller_leaves_no_open_reads_and_the_load_is_cancelled() -> None:
    started = anyio.Event()
    finished: list[str] = []

    @cache
    async def slow(x: int) -> int:
        started.set()
        await anyio.sleep(100)
        finished.append("done")
        return x

    async with rgruntime.open_runtime() as runtime:
        async with anyio.create_task_group() as group:
            group.start_soon(slow, 1)
            await started.wait()
            group.cancel_scope.cancel()
        await anyio.sleep(200)
        assert finished == []  # its only caller left: the load was cancelled
        assert runtime.dependencies.open_reads() == 0
        assert runtime.layer("tool").stats().entries == 0


def test_a_runner_of_the_blocking_client_finds_its_runtime() -> None:
    tool = WeatherTool()

    async def runner(context: RunContext) -> str:
        weather = await tool.get_weather("bern")
        return f"{weather['temp']} degrees"

    with rgruntime.connect() as client:
        agent = client.agents.create(name="Weather Bot", runner=runner)
        for goal in ("Bern?", "Weather in Bern?"):
            assert client.sessions.execute(agent_id=agent.id, goal=goal).output == "17 degrees"
    assert tool.fetches == ["bern"]
