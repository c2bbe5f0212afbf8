"""The caching guide's "Cache Configuration" section: global, per-request and agent-level.

Run: python examples/guide_configuration.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis


async def main() -> None:
    # Global configuration
    async with ResonantGenesis(
        api_key="your_key",
        cache_config={
            "enabled": True,
            "default_ttl": 3600,  # 1 hour
            "max_size": "100MB",
            "strategy": "lru",
        },
    ) as client:
        # Agent-level configuration
        agent = await client.agents.create(
            name="Research Agent",
            cache_config={
                "enabled": True,
                "response_ttl": 3600,
                "tool_cache": True,
                "memory_cache": True,
            },
        )

        # Per-request configuration: disable the cache for one request...
        for _ in range(2):
            result = await client.sessions.execute(
                agent_id=agent.id, goal="Get current weather", cache=False
            )
        print("cache=False twice, cached:", result.cached)

        # ...or give one answer a custom TTL.
        await client.sessions.execute(agent_id=agent.id, goal="Analyze document", cache_ttl=7200)
        result = await client.sessions.execute(agent_id=agent.id, goal="Analyze document")
        print("second 'Analyze document', cached:", result.cached, "from", result.layer)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
