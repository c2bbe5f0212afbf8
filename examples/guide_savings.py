"""The caching guide's "Cache Monitoring" and "Token Savings" sections.

Run: python examples/guide_savings.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis


async def main() -> None:
    async with ResonantGenesis() as client:
        agent = await client.agents.create(name="FAQ Bot", model="sim-large")
        for goal in ["What is your return policy?"] * 4 + ["How do I reset my password?"] * 2:
            await client.sessions.execute(agent_id=agent.id, goal=goal)

        # Get cache statistics
        stats = client.cache.get_stats()
        response = stats.layers["response"]
        print(f"Hit rate: {response.hit_rate:.1f}%")
        print(f"Total entries: {stats.entry_count}")
        print(f"Memory usage: {stats.memory_usage}")
        print(f"Evictions: {stats.eviction_count}")

        # Track token savings from caching
        savings = client.cache.get_savings(period="30d")
        print(f"Cached responses: {savings.cached_responses}")
        print(f"Tokens saved: {savings.tokens_saved}")
        print(f"Cost saved: ${savings.cost_saved:.6f}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
