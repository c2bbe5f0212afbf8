"""The caching guide's "Cache Invalidation" and "Cache Tags" sections, through the client.

(``invalidation.py`` shows the same selections on the runtime's layers directly.)

Run: python examples/guide_invalidation.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider
from rgruntime.tools import cache


@cache(ttl=300, key_params=["location"], name="weather_current")
async def get_weather(location: str) -> dict[str, int]:
    await anyio.sleep(0.05)  # the weather API
    return {"temp": 21}


async def main() -> None:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0.05)) as client:

        async def runner(context: object) -> str:
            weather = await get_weather("Paris")
            return f"{weather['temp']} degrees"

        await client.agents.create(name="Support Bot", agent_id="agent_123")
        await client.agents.create(name="Weather Bot", agent_id="weather_bot", runner=runner)
        for goal in ("specific_query", "other_query"):
            await client.sessions.execute(agent_id="agent_123", goal=goal)
        await client.sessions.execute(agent_id="weather_bot", goal="Weather?")

        # Invalidate specific cache entry
        removed = await client.cache.invalidate(agent_id="agent_123", key="specific_query")
        print("agent_id + key:", removed)

        # Invalidate all agent cache
        print("agent_id:", await client.cache.invalidate(agent_id="agent_123"))

        # Invalidate by pattern: the tool result, and the answer that used it
        print("pattern weather_*:", await client.cache.invalidate(pattern="weather_*"))

        # Configure automatic invalidation
        await client.sessions.execute(agent_id="agent_123", goal="Hours?")
        await client.agents.update(
            agent_id="agent_123",
            cache_config={
                "auto_invalidate": {
                    "on_agent_update": True,
                    "on_tool_update": True,
                    "on_memory_update": True,
                }
            },
        )
        result = await client.sessions.execute(agent_id="agent_123", goal="Hours?")
        print("after agents.update, from the response cache:", result.layer == "response")

        # Tag cache entries for grouped invalidation
        await client.sessions.execute(
            agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
        )
        # Use hierarchical tags
        await client.sessions.execute(
            agent_id="agent_123", goal="Phones?", cache_tags=["products:electronics:phones"]
        )
        await client.sessions.execute(
            agent_id="agent_123", goal="Laptops?", cache_tags=["products:electronics"]
        )
        # Invalidate parent invalidates children: the three answers, and the model outputs
        # made for them (so the next identical request computes a fresh answer)
        removed = await client.cache.invalidate(tags=["products"])
        print("tags ['products'] (parent and children):", removed)
        again = await client.sessions.execute(
            agent_id="agent_123", goal="Phones?", cache_tags=["products:electronics:phones"]
        )
        print("after the invalidation, computed again:", not again.cached)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
