"""The caching guide's "Tool Caching" section: per-agent tool cache settings, a cached tool
class, and what an answer depends on.

Run: python examples/guide_tool_caching.py [asyncio|trio]
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider
from rgruntime.tools import Tool, cache


class WeatherTool(Tool):
    """The guide's custom tool. Its results are keyed by location only."""

    api_calls = 0

    async def fetch_weather(self, location: str) -> dict[str, Any]:
        WeatherTool.api_calls += 1
        await anyio.sleep(0.05)  # the weather API
        return {"location": location, "temp": 21}

    @cache(ttl=300, key_params=["location"])
    async def get_weather(self, location: str) -> dict[str, Any]:
        # Fetch weather data
        return await self.fetch_weather(location)


async def web_search(query: str) -> list[str]:
    """Search the web."""
    return [f"https://example.org/search?q={query}"]


async def code_exec(source: str) -> str:
    """Run Python code."""
    code_exec.runs += 1  # type: ignore[attr-defined]
    return "42"


code_exec.runs = 0  # type: ignore[attr-defined]


async def main() -> None:
    # The simulated model calls both tools, then answers from their results.
    model = SimulatedProvider(
        latency=0.05,
        tool_script={"web_search": {"query": "rgruntime"}, "code_exec": {"source": "6 * 7"}},
    )
    async with ResonantGenesis(provider=model) as client:
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
        for goal in ("What is rgruntime?", "Summarize rgruntime."):
            await client.sessions.execute(agent_id=agent.id, goal=goal)
        tool_stats = client.cache.get_stats().layers["tool"]
        print(f"web_search cached: {tool_stats.entries} entry, {tool_stats.hits} hit")
        print(f"code_exec runs: {code_exec.runs} (never cached)")  # type: ignore[attr-defined]

        # Custom tool cache
        tool = WeatherTool()
        for _ in range(3):
            await tool.get_weather("Paris")
        print(f"get_weather('Paris') x3, weather API calls: {WeatherTool.api_calls}")

        # An answer depends on the tool results it used: invalidating one removes both.
        async def runner(context: Any) -> str:
            weather = await tool.get_weather("Paris")
            return f"It is {weather['temp']} degrees in Paris."

        bot = await client.agents.create(name="Weather Bot", runner=runner)
        await client.sessions.execute(agent_id=bot.id, goal="Weather in Paris?")
        removed = await client.cache.invalidate(pattern="weather_*")
        result = await client.sessions.execute(agent_id=bot.id, goal="Weather in Paris?")
        print(f"invalidate(pattern='weather_*') removed {removed}; answer cached: {result.cached}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
