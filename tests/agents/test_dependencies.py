"""An answer depends on the tool results, memory lookups and model outputs it used.

Invalidating (deleting, replacing, expiring...) any of them removes the answer, across layers,
through the runtime's dependency graph; unrelated answers stay cached.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

import rgruntime
from rgruntime import ConfigError, ResonantGenesis, RunContext
from rgruntime.providers import SimulatedProvider
from rgruntime.runtime.dependencies import ReadSet, record_read, recording
from rgruntime.tools import cache

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

MEMORY_KEY = "memory:agent_123:policies"


class Scenario:
    """An agent whose runner uses a tool result and a memory lookup for weather goals, and the
    model alone for any other goal."""

    def __init__(self, client: ResonantGenesis) -> None:
        self.client = client
        self.weather_calls: list[str] = []

    async def setup(self, **agent_options: Any) -> None:
        client = self.client
        memory = client.runtime.layer("memory")
        await memory.set(MEMORY_KEY, "30-day returns")

        async def get_weather(location: str) -> dict[str, int]:
            """Current weather."""
            self.weather_calls.append(location)
            return {"temp": 17}

        client.tools.register(get_weather)

        async def runner(context: RunContext) -> str:
            if "weather" not in context.goal:
                return (await context.complete()).text
            weather = await context.call_tool("get_weather", {"location": "paris"})
            # A memory lookup, as client.memory does it: read the memory layer, record the read.
            note = await memory.get(MEMORY_KEY)
            record_read("memory", MEMORY_KEY)
            return f"{weather['temp']} degrees; {note}"

        await client.agents.create(
            name="Research Agent",
            agent_id="agent_123",
            tools=["get_weather"],
            runner=runner,
            **agent_options,
        )

    async def execute(self, goal: str) -> rgruntime.ExecutionResult:
        return await self.client.sessions.execute(agent_id="agent_123", goal=goal)


async def test_invalidating_the_tool_result_makes_the_next_identical_execution_a_miss(
    client: ResonantGenesis,
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    used = await scenario.execute("weather in paris?")
    unrelated = await scenario.execute("What are your hours?")
    assert (await scenario.execute("weather in paris?")).layer == "response"
    graph = client.runtime.dependencies
    dependencies = graph.dependencies_of("response", used.cache_key or "")
    assert {layer for layer, _ in dependencies} == {"tool", "memory"}
    assert {layer for layer, _ in graph.dependencies_of("response", unrelated.cache_key or "")} == {
        "model"
    }

    # The tool result, and the answer that used it: two entries.
    assert await client.cache.invalidate(tags=["tool:get_weather"]) == 2
    again = await scenario.execute("weather in paris?")
    assert (again.cached, again.output) == (False, used.output)
    assert scenario.weather_calls == ["paris", "paris"]
    still = await scenario.execute("What are your hours?")
    assert (still.cached, still.layer) == (True, "response")


async def test_invalidating_the_memory_entry_makes_the_next_identical_execution_a_miss(
    client: ResonantGenesis,
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    await scenario.execute("weather in paris?")
    await scenario.execute("What are your hours?")

    assert await client.cache.invalidate(key=MEMORY_KEY) == 2
    again = await scenario.execute("weather in paris?")
    assert again.cached is False
    assert scenario.weather_calls == ["paris"]  # the tool result itself is still cached
    assert (await scenario.execute("What are your hours?")).layer == "response"


@pytest.mark.parametrize("how", ["delete", "replace", "expire"])
async def test_deleting_replacing_or_expiring_a_dependency_removes_the_answer(
    client: ResonantGenesis, how: str
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    used = await scenario.execute("weather in paris?")
    memory = client.runtime.layer("memory")
    if how == "delete":
        assert await client.cache.delete(MEMORY_KEY, layer="memory")
    elif how == "replace":
        await memory.set(MEMORY_KEY, "60-day returns")
        await client.runtime.dependencies.settled()
    else:
        await anyio.sleep(301)  # the tool result's TTL (the tool layer's 5 minutes)
        await client.runtime.dependencies.settled()
    assert await client.cache.get(used.cache_key or "") is None
    again = await scenario.execute("weather in paris?")
    assert again.cached is False
    if how == "replace":
        assert again.output == "17 degrees; 60-day returns"


async def test_a_model_output_invalidated_takes_its_answers_along(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    first = await client.sessions.execute(agent_id=agent.id, goal="Hours?")
    assert await client.cache.invalidate(tags=["model:sim-small"]) == 2
    assert await client.cache.get(first.cache_key or "") is None


async def test_an_answer_whose_dependency_went_while_it_ran_is_not_cached(
    client: ResonantGenesis,
) -> None:
    memory = client.runtime.layer("memory")
    await memory.set("memory:k", "old")

    async def runner(context: RunContext) -> str:
        value = await memory.get("memory:k")
        record_read("memory", "memory:k")
        await anyio.sleep(10)  # meanwhile, the memory changes
        return f"answer from {value}"

    agent = await client.agents.create(name="Bot", runner=runner)
    async with anyio.create_task_group() as group:
        group.start_soon(client.sessions.execute, agent.id, "Q?")
        await anyio.sleep(5)
        await memory.set("memory:k", "new")
    assert client.runtime.layer("response").stats().entries == 0
    assert (await client.sessions.execute(agent.id, "Q?")).output == "answer from new"
    assert (await client.sessions.execute(agent.id, "Q?")).layer == "response"


async def test_on_tool_update_false_keeps_the_answers_when_tool_results_go(
    client: ResonantGenesis,
) -> None:
    scenario = Scenario(client)
    await scenario.setup(cache_config={"auto_invalidate": {"on_tool_update": False}})
    await scenario.execute("weather in paris?")
    assert await client.cache.invalidate(tags=["tool:get_weather"]) == 1  # the result alone
    assert (await scenario.execute("weather in paris?")).layer == "response"


async def test_updating_a_tool_invalidates_its_results_and_the_answers_that_used_them(
    client: ResonantGenesis,
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    await scenario.execute("weather in paris?")
    await scenario.execute("What are your hours?")

    # The same name, docstring and schema: the answers' keys stay, only the graph removes them.
    async def get_weather(location: str) -> dict[str, int]:
        """Current weather."""
        return {"temp": 18}

    tool = await client.tools.update("get_weather", get_weather)
    assert tool.version == 2
    again = await scenario.execute("weather in paris?")
    assert again.cached is False
    assert again.output.startswith("18 degrees")
    assert (await scenario.execute("What are your hours?")).layer == "response"

    # Registering under a taken name is an update too (its invalidation runs in the graph's task).
    async def get_weather_v3(location: str) -> dict[str, int]:
        return {"temp": 19}

    client.tools.register(get_weather_v3, name="get_weather", description="Current weather.")
    await client.runtime.dependencies.settled()
    assert (await scenario.execute("weather in paris?")).output.startswith("19 degrees")


async def test_updating_an_agent_with_on_agent_update_false_leaves_old_answers_to_their_ttl(
    client: ResonantGenesis,
) -> None:
    agent = await client.agents.create(
        name="Bot", cache_config={"auto_invalidate": {"on_agent_update": False}}
    )
    await client.sessions.execute(agent.id, "Hi")
    await client.agents.update(agent.id, temperature=0.5)
    assert client.runtime.layer("response").stats().entries == 1
    await client.agents.update(
        agent_id=agent.id,
        cache_config={
            "auto_invalidate": {
                "on_agent_update": True,
                "on_tool_update": True,
                "on_memory_update": True,
            }
        },
    )
    assert client.runtime.layer("response").stats().entries == 0


# -- the built-in loop: tools registered on an agent are cached there ------------------------


async def test_the_builtin_loop_caches_tools_per_the_agents_tool_cache_config() -> None:
    provider = SimulatedProvider(
        latency=1.0,
        tool_script={
            "web_search": lambda request: {"query": "rgruntime", "page": len(request.messages)},
            "code_exec": {"source": "print(1)"},
        },
    )
    calls: list[str] = []

    async def web_search(query: str, page: int = 1) -> list[str]:
        """Search the web."""
        calls.append("web_search")
        return [f"{query} docs"]

    async def code_exec(source: str) -> str:
        """Run code."""
        calls.append("code_exec")
        return "1"

    async with ResonantGenesis(provider=provider) as client:
        client.tools.register(web_search)
        client.tools.register(code_exec)
        # Configure tool-specific caching
        agent = await client.agents.create(
            name="Research Agent",
            tools=["web_search", "code_exec"],
            tool_cache_config={
                "web_search": {
                    "enabled": True,
                    "ttl": 300,  # 5 minutes
                    "cache_key_params": ["query"],
                },
                "code_exec": {
                    "enabled": False  # Don't cache code execution
                },
            },
        )
        for goal in ("What is rgruntime?", "Who wrote rgruntime?"):
            await client.sessions.execute(agent_id=agent.id, goal=goal)
        # "page" differs between the goals but is not a key parameter: one search.
        assert calls.count("web_search") == 1
        assert calls.count("code_exec") == 2
        tool_layer = client.runtime.layer("tool")
        assert tool_layer.stats().entries == 1
        assert await client.cache.invalidate(pattern="web_search*") == 3  # result, 2 answers
        await anyio.lowlevel.checkpoint()

        # Tool caching off for an agent: every call runs.
        plain = await client.agents.create(
            name="No tool cache", tools=["web_search"], cache_config={"tool_cache": False}
        )
        for goal in ("A?", "B?"):
            await client.sessions.execute(agent_id=plain.id, goal=goal)
        assert calls.count("web_search") == 3
        assert tool_layer.stats().entries == 0


async def test_a_cache_decorated_tool_keeps_its_own_settings_unless_the_agent_overrides_them(
    client: ResonantGenesis,
) -> None:
    calls: list[str] = []

    @cache(ttl=60, key_params=["city"])
    async def forecast(city: str, day: int) -> str:
        calls.append(f"{city}/{day}")
        return "sunny"

    client.tools.register(forecast)

    async def runner(context: RunContext) -> str:
        return str(await context.call_tool("forecast", {"city": "paris", "day": len(context.goal)}))

    own = await client.agents.create(name="Own", tools=["forecast"], runner=runner)
    override = await client.agents.create(
        name="Override",
        tools=["forecast"],
        runner=runner,
        tool_cache_config={"forecast": {"cache_key_params": ["city", "day"]}},
    )
    for goal in ("a", "bb"):
        await client.sessions.execute(own.id, goal)
        await client.sessions.execute(override.id, goal)
    # "Own" keyed by city only: one call; "Override" keyed by city and day: two more.
    assert calls == ["paris/1", "paris/1", "paris/2"]


@pytest.mark.parametrize(
    ("tool_cache_config", "field", "accepted"),
    [
        ({"shell": {"enabled": False}}, "tool_cache_config.shell", "web_search"),
        ({"web_search": {"ttl": -5}}, "tool_cache_config.web_search.ttl", "positive"),
        ({"web_search": {"ttl": "2h"}}, "tool_cache_config.web_search.ttl", "max_ttl"),
        ({"web_search": {"enabled": "yes"}}, "tool_cache_config.web_search.enabled", "True"),
        (
            {"web_search": {"strategy": "fuzzy"}},
            "tool_cache_config.web_search.strategy",
            "'exact', 'semantic', 'none'",
        ),
        (
            {"web_search": {"cache_key_params": "query"}},
            "tool_cache_config.web_search.cache_key_params",
            "list of parameter names",
        ),
        ({"web_search": {"colour": 1}}, "tool_cache_config.web_search.colour", "enabled, ttl"),
        ({"web_search": True}, "tool_cache_config.web_search", "dict"),
    ],
)
async def test_bad_tool_cache_config_names_the_field_and_loses_nothing(
    client: ResonantGenesis, tool_cache_config: dict[str, Any], field: str, accepted: str
) -> None:
    agent = await client.agents.create(name="Bot", tools=["web_search"])
    answer = await client.sessions.execute(agent.id, "Hi")
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(
            name="Bad", tools=["web_search"], tool_cache_config=tool_cache_config
        )
    assert raised.value.field == field
    assert accepted in raised.value.accepted
    with pytest.raises(ConfigError):
        await client.agents.update(agent.id, tool_cache_config=tool_cache_config)
    assert client.agents.get(agent.id).version == 1
    assert (await client.sessions.execute(agent.id, "Hi")).cache_key == answer.cache_key
    assert client.runtime.layer("response").stats().entries == 1


async def test_unknown_key_params_in_tool_cache_config_fail_when_the_tool_runs(
    client: ResonantGenesis,
) -> None:
    async def web_search(query: str) -> str:
        return "results"

    client.tools.register(web_search)

    async def runner(context: RunContext) -> str:
        return str(await context.call_tool("web_search", {"query": "x"}))

    agent = await client.agents.create(
        name="Bot",
        tools=["web_search"],
        runner=runner,
        tool_cache_config={"web_search": {"cache_key_params": ["q"]}},
    )
    with pytest.raises(ConfigError) as raised:
        await client.sessions.execute(agent.id, "Hi")
    assert raised.value.field == "tool_cache_config.web_search.cache_key_params"
    assert "query" in raised.value.accepted


# -- the graph itself ---------------------------------------------------------------------------


async def test_cycles_end_and_no_edge_outlives_either_side() -> None:
    async with rgruntime.open_runtime() as runtime:
        graph = runtime.dependencies
        tool, memory = runtime.layer("tool"), runtime.layer("memory")
        for key in ("a", "b", "c"):
            await tool.set(key, key)
        await memory.set("m", 1)

        def depend(node: tuple[str, str], *reads: tuple[str, str]) -> None:
            read_set = ReadSet(graph)
            for layer, key in reads:
                read_set.add(layer, key)
            graph.depend(node, read_set)
            read_set._close()

        depend(("tool", "a"), ("tool", "b"))
        depend(("tool", "b"), ("tool", "c"), ("memory", "m"))
        depend(("tool", "c"), ("tool", "a"))  # a cycle: a -> b -> c -> a
        assert graph.edge_count() == 4
        with anyio.fail_after(5):
            assert await runtime.invalidate(key="m") == 4
        assert tool.stats().entries == 0
        assert graph.edge_count() == 0
        assert graph.dependents_of("tool", "a") == frozenset()

        # A dependent that leaves takes its own edges: nothing stays behind.
        await tool.set("x", 1)
        await tool.set("y", 2)
        depend(("tool", "x"), ("tool", "y"))
        await tool.delete("x")
        assert graph.edge_count() == 0
        assert graph.dependents_of("tool", "y") == frozenset()
        assert graph.open_reads() == 0


async def test_record_read_outside_an_execution_is_a_no_op() -> None:
    record_read("tool", "anything")  # no runtime, no execution: nothing happens
    async with rgruntime.open_runtime() as runtime:
        record_read("tool", "anything")
        with recording(runtime.dependencies) as reads:
            record_read("tool", "k")
            record_read("tool", "k")
        assert reads.nodes == {("tool", "k")}
        assert runtime.dependencies.open_reads() == 0


async def test_a_cancelled_execution_leaves_no_open_reads(client: ResonantGenesis) -> None:
    started = anyio.Event()

    async def runner(context: RunContext) -> str:
        record_read("memory", "memory:x")
        started.set()
        await anyio.sleep(100)
        return "never"

    agent = await client.agents.create(name="Slow", runner=runner)
    await client.runtime.layer("memory").set("memory:x", 1)
    async with anyio.create_task_group() as group:
        group.start_soon(client.sessions.execute, agent.id, "Q?")
        await started.wait()
        assert client.runtime.dependencies.open_reads() == 1
        group.cancel_scope.cancel()
    await anyio.sleep(1)
    assert client.runtime.dependencies.open_reads() == 0
    assert client.runtime.layer("response").stats().entries == 0


async def test_what_a_cached_tool_reads_cascades_through_its_result_to_the_answer(
    client: ResonantGenesis,
) -> None:
    memory = client.runtime.layer("memory")
    await memory.set("memory:prices", {"phone": 999})
    calls: list[str] = []

    @cache(name="price_lookup")
    async def price(sku: str) -> int:
        calls.append(sku)
        prices = await memory.get("memory:prices")
        record_read("memory", "memory:prices")  # the tool's own read: its result depends on it
        return int(prices[sku])

    async def runner(context: RunContext) -> str:
        return f"${await price('phone')}"

    agent = await client.agents.create(name="Shop", runner=runner)
    answer = await client.sessions.execute(agent.id, "Phone price?")
    graph = client.runtime.dependencies
    (tool_node,) = graph.dependencies_of("response", answer.cache_key or "")
    assert graph.dependencies_of(*tool_node) == {("memory", "memory:prices")}

    # memory -> tool result -> answer
    assert await client.cache.invalidate(key="memory:prices") == 3
    await memory.set("memory:prices", {"phone": 899})
    assert (await client.sessions.execute(agent.id, "Phone price?")).output == "$899"
    assert calls == ["phone", "phone"]
    assert graph.edge_count() == 2


async def test_closing_the_runtime_with_a_cascade_queued_ends_cleanly() -> None:
    runtime = rgruntime.open_runtime()
    async with runtime:
        graph = runtime.dependencies
        await runtime.layer("tool").set("t", 1, tags=["x"])
        graph.invalidate_soon(["x"])  # queued; the runtime closes before it runs
    assert not graph.running
    assert graph.edge_count() == 0
    with anyio.fail_after(1):
        await graph.settled()  # a closed graph has nothing to wait for
