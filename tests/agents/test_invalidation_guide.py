"""The guide's Tool Caching, Cache Invalidation and Cache Tags snippets, run as written (with
``await``), each showing its effect: hits, then the invalidation, then a miss."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rgruntime import ConfigError, ResonantGenesis
from rgruntime.providers import SimulatedProvider
from rgruntime.tools import Tool, cache

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


class WeatherTool(Tool):
    def __init__(self) -> None:
        self.fetched = 0

    async def fetch_weather(self, location: str) -> dict[str, Any]:
        self.fetched += 1
        return {"location": location, "temp": 21}

    @cache(ttl=300, key_params=["location"])
    async def get_weather(self, location: str) -> dict[str, Any]:
        # Fetch weather data
        return await self.fetch_weather(location)


async def test_custom_tool_cache_inside_the_client(client: ResonantGenesis) -> None:
    tool = WeatherTool()
    for _ in range(3):
        assert (await tool.get_weather("Paris"))["temp"] == 21
    assert tool.fetched == 1
    assert client.cache.get_stats().layers["tool"].hits == 2

    # Invalidate by pattern
    assert await client.cache.invalidate(pattern="weather_*") == 1
    await tool.get_weather("Paris")
    assert tool.fetched == 2


async def test_the_custom_tool_in_an_agents_runner_is_a_dependency_of_its_answers(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    tool = WeatherTool()

    async def runner(context: Any) -> str:
        weather = await tool.get_weather("Paris")  # called directly: @cache finds the runtime
        return f"{weather['temp']} degrees in Paris"

    agent = await client.agents.create(name="Weather Bot", agent_id="agent_123", runner=runner)
    for _ in range(2):
        result = await client.sessions.execute(agent_id=agent.id, goal="Get current weather")
    assert result.layer == "response"
    assert tool.fetched == 1

    # The tool result and the answer that used it.
    assert await client.cache.invalidate(pattern="weather_*") == 2
    result = await client.sessions.execute(agent_id=agent.id, goal="Get current weather")
    assert result.cached is False
    assert tool.fetched == 2


async def test_manual_invalidation(client: ResonantGenesis) -> None:
    await client.agents.create(name="Support Bot", agent_id="agent_123")
    for _ in range(2):
        hit = await client.sessions.execute(agent_id="agent_123", goal="specific_query")
        await client.sessions.execute(agent_id="agent_123", goal="other_query")
    assert hit.layer == "response"

    # Invalidate specific cache entry
    removed = await client.cache.invalidate(agent_id="agent_123", key="specific_query")
    assert removed == 2  # the answer and the model output written for it
    miss = await client.sessions.execute(agent_id="agent_123", goal="specific_query")
    assert miss.layer != "response"
    assert (await client.sessions.execute("agent_123", "other_query")).layer == "response"

    # Invalidate all agent cache: both answers, and the model output written for other_query
    # (specific_query's fresh run wrote none: it asked the model past the cache)
    assert await client.cache.invalidate(agent_id="agent_123") == 3
    assert (await client.sessions.execute("agent_123", "other_query")).layer != "response"

    # Invalidate by pattern
    await client.runtime.layer("tool").set("weather_paris", {"temp": 21})
    await client.runtime.layer("tool").set("weather_rome", {"temp": 25})
    assert await client.cache.invalidate(pattern="weather_*") == 2
    assert await client.cache.get("weather_paris", layer="tool") is None


async def test_automatic_invalidation(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot", agent_id="agent_123")
    await client.sessions.execute(agent_id="agent_123", goal="Hours?")
    assert (await client.sessions.execute(agent_id="agent_123", goal="Hours?")).layer == "response"

    # Configure automatic invalidation
    agent = await client.agents.update(
        agent_id="agent_123",
        cache_config={
            "auto_invalidate": {
                "on_agent_update": True,
                "on_tool_update": True,
                "on_memory_update": True,
            }
        },
    )
    auto = agent.cache_config.auto_invalidate
    assert (auto.on_agent_update, auto.on_tool_update, auto.on_memory_update) == (True,) * 3
    assert client.runtime.layer("response").stats().entries == 0
    assert (await client.sessions.execute(agent_id="agent_123", goal="Hours?")).layer != "response"


async def test_automatic_invalidation_keeps_the_rest_of_the_agents_cache_config(
    client: ResonantGenesis,
) -> None:
    await client.agents.create(
        name="Support Bot",
        agent_id="agent_123",
        cache_config={
            "response_ttl": 7200,
            "tool_cache": False,
            "memory_cache": False,
            "response_cache": {"max_entries": 50},
            "semantic_cache": {"similarity_threshold": 0.95},
        },
    )
    # The guide's snippet gives auto_invalidate alone: the rest of the config stays.
    agent = await client.agents.update(
        agent_id="agent_123",
        cache_config={
            "auto_invalidate": {
                "on_agent_update": True,
                "on_tool_update": False,
                "on_memory_update": True,
            }
        },
    )
    config = agent.cache_config
    assert (config.response_ttl, config.tool_cache, config.memory_cache) == (7200, False, False)
    assert config.response_cache.max_entries == 50
    assert config.semantic_cache.similarity_threshold == 0.95
    assert config.auto_invalidate.on_tool_update is False
    answer = await client.sessions.execute(agent_id="agent_123", goal="Hours?")
    assert answer.cached is False
    await anyio.sleep(5000)  # past the response layer's default hour, within the agent's two
    assert (await client.sessions.execute(agent_id="agent_123", goal="Hours?")).cached

    # Nested settings merge key by key; the response_ttl alias replaces response_cache.ttl.
    agent = await client.agents.update("agent_123", cache_config={"response_cache": {"ttl": 60}})
    assert (agent.cache_config.response_ttl, agent.cache_config.response_cache.max_entries) == (
        60,
        50,
    )
    agent = await client.agents.update("agent_123", cache_config={"response_ttl": 120})
    assert agent.cache_config.response_ttl == 120
    assert agent.cache_config.auto_invalidate.on_tool_update is False
    # Validated as a whole: a bad value changes nothing.
    with pytest.raises(ConfigError) as raised:
        await client.agents.update("agent_123", cache_config={"response_cache": {"ttl": -1}})
    assert raised.value.field == "cache_config.response_cache.ttl"
    assert client.agents.get("agent_123") == agent


async def test_tag_cache_entries_for_grouped_invalidation(client: ResonantGenesis) -> None:
    await client.agents.create(name="Catalog Bot", agent_id="agent_123")
    for _ in range(2):
        # Tag cache entries for grouped invalidation
        client_result = await client.sessions.execute(
            agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
        )
        other = await client.sessions.execute(agent_id="agent_123", goal="Opening hours?")
    assert (client_result.layer, other.layer) == ("response", "response")

    # Invalidate by tag: the answer and the model output written for it
    assert await client.cache.invalidate(tags=["products"]) == 2
    result = await client.sessions.execute(agent_id="agent_123", goal="Get product info")
    assert result.layer != "response"
    assert (await client.sessions.execute("agent_123", "Opening hours?")).layer == "response"


async def test_hierarchical_tags(client: ResonantGenesis) -> None:
    await client.agents.create(name="Catalog Bot", agent_id="agent_123")
    # Use hierarchical tags
    cache_tags = ["products", "products:electronics", "products:electronics:phones"]
    goals = {
        "Phones?": ["products:electronics:phones"],
        "Laptops?": ["products:electronics"],
        "All products?": cache_tags,
        "Shoes?": ["productsX"],  # not a child of "products"
    }
    for _ in range(2):
        for goal, tags in goals.items():
            result = await client.sessions.execute("agent_123", goal, cache_tags=tags)
            assert result.layer in (None, "response")
    assert client.cache.get_stats().layers["response"].hits == 4

    # Invalidate parent invalidates children (answers and the model outputs written for them)
    assert await client.cache.invalidate(tags=["products"]) == 6
    for goal in ("Phones?", "Laptops?", "All products?"):
        assert (await client.sessions.execute("agent_123", goal, cache_tags=goals[goal])).layer != (
            "response"
        )
    assert (await client.sessions.execute("agent_123", "Shoes?")).layer == "response"
