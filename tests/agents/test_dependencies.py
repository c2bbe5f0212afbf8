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
    # Computed again, tools included: invalidation means a fresh answer (issue 13, item 1).
    assert scenario.weather_calls == ["paris", "paris"]
    assert (await scenario.execute("What are your hours?")).layer == "response"


@pytest.mark.parametrize("how", ["delete", "replace"])
async def test_deleting_or_replacing_a_dependency_removes_the_answer(
    client: ResonantGenesis, how: str
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    used = await scenario.execute("weather in paris?")
    memory = client.runtime.layer("memory")
    if how == "delete":
        assert await client.cache.delete(MEMORY_KEY, layer="memory")
    else:
        await memory.set(MEMORY_KEY, "60-day returns")
        await client.runtime.dependencies.settled()
    assert await client.cache.get(used.cache_key or "") is None
    again = await scenario.execute("weather in paris?")
    assert again.cached is False
    if how == "replace":
        assert again.output == "17 degrees; 60-day returns"


async def test_an_expired_dependency_leaves_the_answer_to_its_own_ttl(
    client: ResonantGenesis,
) -> None:
    scenario = Scenario(client)
    await scenario.setup()
    used = await scenario.execute("weather in paris?")
    tool_node = next(
        node
        for node in client.runtime.dependencies.dependencies_of("response", used.cache_key or "")
        if node[0] == "tool"
    )
    await anyio.sleep(301)  # the tool result's TTL (the tool layer's 5 minutes)
    await client.runtime.dependencies.settled()
    assert tool_node[1] not in client.runtime.layer("tool")
    # Not a known change: the answer keeps its hour, and the edge to the expired result is gone.
    assert (await scenario.execute("weather in paris?")).layer == "response"
    graph = client.runtime.dependencies
    assert tool_node not in graph.dependencies_of("response", used.cache_key or "")
    assert graph.dependents_of(*tool_node) == frozenset()


async def test_cascade_on_expiry_makes_an_answer_live_no_longer_than_what_it_read() -> None:
    async with ResonantGenesis(
        provider=SimulatedProvider(latency=1.0), cache_config={"cascade_on_expiry": True}
    ) as client:
        assert client.runtime.dependencies.cascade_on_expiry is True
        scenario = Scenario(client)
        await scenario.setup()
        used = await scenario.execute("weather in paris?")
        await anyio.sleep(301)
        await client.runtime.dependencies.settled()
        assert await client.cache.get(used.cache_key or "") is None
        assert (await scenario.execute("weather in paris?")).cached is False


def test_cascade_on_expiry_is_validated() -> None:
    with pytest.raises(ConfigError) as raised:
        rgruntime.RuntimeConfig.from_mapping({"cascade_on_expiry": "yes"})
    assert raised.value.field == "cache_config.cascade_on_expiry"
    assert rgruntime.RuntimeConfig().cascade_on_expiry is False
    with pytest.raises(TypeError):
        rgruntime.DependencyGraph(cascade_on_expiry=1)  # type: ignore[arg-type]


async def test_evicting_tool_results_keeps_the_answers_that_used_them() -> None:
    # The guide's 24 h answers over a tool layer capped at 3 results: capacity pressure on the
    # tool layer is not a change of any result, so the answers stay.
    async with ResonantGenesis(
        provider=SimulatedProvider(latency=1.0),
        cache_config={"layers": {"tool": {"max_entries": 3}}},
    ) as client:
        calls: list[str] = []

        async def lookup(city: str) -> str:
            """Look a city up."""
            calls.append(city)
            return f"facts about {city}"

        client.tools.register(lookup)

        async def runner(context: RunContext) -> str:
            return str(await context.call_tool("lookup", {"city": context.goal}))

        agent = await client.agents.create(
            name="Cities", tools=["lookup"], runner=runner, cache_config={"response_ttl": "1d"}
        )
        cities = [f"city{number}" for number in range(20)]
        for city in cities:
            assert (await client.sessions.execute(agent.id, city)).cached is False
        await client.runtime.layer("tool").cleanup()
        await client.runtime.dependencies.settled()
        assert client.runtime.layer("tool").stats().entries == 3
        again = [await client.sessions.execute(agent.id, city) for city in cities]
        assert [result.layer for result in again] == ["response"] * 20
        assert len(calls) == 20
        # The evicted results' edges went with them: only the 3 live results keep dependents.
        graph = client.runtime.dependencies
        assert graph.edge_count() == 3
        assert client.runtime.dependencies.cascaded == 0


async def test_trimming_an_agents_lookups_or_answers_does_not_cascade(
    anyio_backend: str,
) -> None:
    memories = ["alpha one", "beta two"]

    async def search(agent_id: str, query: str, k: int) -> list[dict[str, Any]]:
        return [{"text": text} for text in memories if query in text]

    async with ResonantGenesis(
        provider=SimulatedProvider(latency=1.0), memory_search=search
    ) as client:

        async def runner(context: RunContext) -> str:
            found = await client.memory.search(context.agent.id, context.goal)
            return "; ".join(result.text for result in found) or "nothing"

        agent = await client.agents.create(
            name="Trim",
            runner=runner,
            memory_config={"cache": {"max_entries": 1}},
            cache_config={"response_cache": {"max_entries": 2}},
        )
        reasons: list[tuple[str, str]] = []
        for name in ("memory", "response"):
            client.runtime.layer(name).add_removal_listener(
                lambda layer, key, reason: reasons.append((layer, reason))
            )
        first = await client.sessions.execute(agent.id, "alpha")
        await client.sessions.execute(agent.id, "beta")  # trims the "alpha" lookup
        await client.runtime.dependencies.settled()
        assert reasons == [("memory", "trimmed")]
        # The answer that used the trimmed lookup stays: its lookup was not changed.
        assert (await client.sessions.execute(agent.id, "alpha")).layer == "response"
        await client.sessions.execute(agent.id, "two")  # a third answer trims the oldest
        await client.runtime.dependencies.settled()
        assert ("response", "trimmed") in reasons
        assert first.cache_key not in client.runtime.layer("response")
        # No edge outlives either side.
        graph = client.runtime.dependencies
        assert graph.dependencies_of("response", first.cache_key or "") == frozenset()
        assert graph.edge_count() == sum(
            len(graph.dependencies_of("response", key))
            for key in client.runtime.layer("response")._entries
        )


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
    async def web_search(query: str) -> str:
        """Search the web."""
        return query

    client.tools.register(web_search)
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
            read_set.close()

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


# -- reads of values the cache no longer holds ---------------------------------------------------


async def test_a_memory_lookup_invalidated_while_it_ran_does_not_cache_the_answer() -> None:
    store = ["refunds take 5 days"]

    async def search(agent_id: str, query: str, k: int) -> list[dict[str, Any]]:
        found = list(store)  # read before the store changes...
        await anyio.sleep(10)  # ...while the lookup is still running
        return [{"text": text} for text in found]

    async with ResonantGenesis(
        provider=SimulatedProvider(latency=1.0), memory_search=search
    ) as client:

        async def runner(context: RunContext) -> str:
            found = await client.memory.search(context.agent.id, "refunds")
            return found[0].text

        agent = await client.agents.create(name="Support", runner=runner)
        async with anyio.create_task_group() as group:
            group.start_soon(client.sessions.execute, agent.id, "How long do refunds take?")
            await anyio.sleep(5)
            store[:] = ["refunds take 10 days"]
            await client.memory.invalidate(agent.id)
        # The first run was computed from the old text: returned, never cached.
        assert client.runtime.layer("response").stats().entries == 0
        again = await client.sessions.execute(agent.id, "How long do refunds take?")
        assert (again.cached, again.output) == (False, "refunds take 10 days")
        hit = await client.sessions.execute(agent.id, "How long do refunds take?")
        assert (hit.layer, hit.output) == ("response", "refunds take 10 days")
        assert client.runtime.dependencies.dependencies_of("response", hit.cache_key or "")


async def test_a_model_output_invalidated_while_it_was_asked_does_not_cache_the_answer(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    async with anyio.create_task_group() as group:
        group.start_soon(client.sessions.execute, agent.id, "Hours?")
        await anyio.sleep(0.5)  # the model call takes 1 s
        await client.cache.invalidate(tags=["model:sim-small"])
    assert client.runtime.layer("response").stats().entries == 0
    again = await client.sessions.execute(agent.id, "Hours?")
    assert again.cached is False
    assert again.model_calls == 1
    assert (await client.sessions.execute(agent.id, "Hours?")).layer == "response"


# -- the Tool Cache snippet, and the failures the graph must catch -------------------------------


async def test_the_tool_cache_snippet_misses_after_its_results_are_invalidated() -> None:
    provider = SimulatedProvider(latency=1.0, tool_script={"web_search": {"query": "rgruntime"}})
    calls: list[str] = []

    async def web_search(query: str) -> list[str]:
        """Search the web."""
        calls.append(query)
        return [f"{query} docs"]

    async with ResonantGenesis(provider=provider) as client:
        client.tools.register(web_search)
        agent = await client.agents.create(
            name="Research Agent",
            tools=["web_search"],
            tool_cache_config={
                "web_search": {"enabled": True, "ttl": 300, "cache_key_params": ["query"]}
            },
        )
        first = await client.sessions.execute(agent_id=agent.id, goal="What is rgruntime?")
        hit = await client.sessions.execute(agent_id=agent.id, goal="What is rgruntime?")
        assert (first.cached, hit.layer, calls) == (False, "response", ["rgruntime"])
        assert await client.cache.invalidate(pattern="web_search*") == 2  # result, answer
        again = await client.sessions.execute(agent_id=agent.id, goal="What is rgruntime?")
        assert again.layer != "response"
        assert calls == ["rgruntime", "rgruntime"]  # the tool ran again


async def test_a_tool_result_computed_from_a_value_that_went_is_not_cached(
    client: ResonantGenesis,
) -> None:
    memory = client.runtime.layer("memory")
    await memory.set("memory:rate", 1.1)
    calls: list[float] = []

    @cache(name="convert")
    async def convert(amount: int) -> float:
        rate = await memory.get("memory:rate")
        record_read("memory", "memory:rate")
        await anyio.sleep(10)  # meanwhile, the rate changes
        calls.append(rate)
        return float(amount * rate)

    async with anyio.create_task_group() as group:
        group.start_soon(convert, 100)
        await anyio.sleep(5)
        await memory.set("memory:rate", 1.2)
    assert client.runtime.layer("tool").stats().entries == 0
    assert await convert(100) == pytest.approx(120.0)
    assert calls == [1.1, 1.2]


async def test_an_uncached_tool_result_hands_its_reads_to_the_answer(
    client: ResonantGenesis,
) -> None:
    memory = client.runtime.layer("memory")
    await memory.set("memory:stock", {})

    @cache(name="stock_lookup")
    async def stock(sku: str) -> int | None:
        found = await memory.get("memory:stock")
        record_read("memory", "memory:stock")
        return found.get(sku)  # None: not cached

    async def runner(context: RunContext) -> str:
        count = await stock("phone")
        return "out of stock" if count is None else f"{count} left"

    agent = await client.agents.create(name="Shop", runner=runner)
    answer = await client.sessions.execute(agent.id, "Phones?")
    graph = client.runtime.dependencies
    # Nothing was cached for the tool: the answer depends on what the tool read, directly.
    assert graph.dependencies_of("response", answer.cache_key or "") == {("memory", "memory:stock")}
    await memory.set("memory:stock", {"phone": 3})
    await graph.settled()
    assert (await client.sessions.execute(agent.id, "Phones?")).output == "3 left"


async def test_a_nested_read_set_hands_its_reads_and_taint_to_the_outer_one() -> None:
    async with rgruntime.open_runtime() as runtime:
        graph = runtime.dependencies
        with recording(graph) as outer:
            with recording(graph) as inner:
                record_read("memory", "m")
                inner.tainted = True
            with recording(graph) as stored:
                record_read("tool", "t")
                stored.committed = True  # its result was stored: it is what the outer read
        assert outer.nodes == {("memory", "m")}
        assert outer.tainted


async def test_a_dependent_whose_write_never_landed_leaves_no_edge(
    client: ResonantGenesis,
) -> None:
    memory = client.runtime.layer("memory")
    await memory.set("memory:x", 1)

    @cache(name="slow_tool")
    async def slow_tool() -> int:
        record_read("memory", "memory:x")
        await anyio.sleep(10)
        return 1

    async with anyio.create_task_group() as group:
        group.start_soon(slow_tool)
        await anyio.sleep(5)
        # Discards the load in flight: its result (and the edges recorded for it) never land.
        await client.runtime.layer("tool").invalidate(tags=["tool:slow_tool"])
    graph = client.runtime.dependencies
    await graph.settled()
    assert client.runtime.layer("tool").stats().entries == 0
    assert graph.edge_count() == 0
    assert graph.dependents_of("memory", "memory:x") == frozenset()


async def test_a_registered_tools_version_is_in_its_results_keys(
    client: ResonantGenesis,
) -> None:
    async def rate(currency: str) -> float:
        """Exchange rate."""
        return 1.1

    client.tools.register(rate)

    async def runner(context: RunContext) -> str:
        return str(await context.call_tool("rate", {"currency": "EUR"}))

    agent = await client.agents.create(name="FX", tools=["rate"], runner=runner)
    await client.sessions.execute(agent.id, "EUR?")
    tool_layer = client.runtime.layer("tool")
    (old_key,) = tool_layer._entries

    async def rate_v2(currency: str) -> float:
        """Exchange rate."""
        return 1.2

    await client.tools.update("rate", rate_v2)
    assert (await client.sessions.execute(agent.id, "EUR?")).output == "1.2"
    (new_key,) = tool_layer._entries
    assert new_key != old_key


async def test_a_runner_calling_the_model_gateway_directly_records_the_model_output(
    client: ResonantGenesis,
) -> None:
    from rgruntime.providers import CompletionRequest, Message

    async def runner(context: RunContext) -> str:
        request = CompletionRequest(
            messages=[Message(role="user", content=context.goal)], model="sim-small"
        )
        call = await client.models.complete(request)  # not through context.complete
        return call.completion.text

    agent = await client.agents.create(name="Own loop", runner=runner)
    first = await client.sessions.execute(agent_id=agent.id, goal="Hours?")
    assert await client.cache.get(first.cache_key or "") is not None
    # Invalidating the model output takes the answer built from it along.
    assert await client.cache.invalidate(tags=["model:sim-small"]) == 2
    assert await client.cache.get(first.cache_key or "") is None
