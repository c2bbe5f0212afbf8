"""The caching guide's "Response Caching" section: what an answer's key is made of, and a hit.

Needs the semantic extra (its agent also matches similar goals): pip install
'rgruntime[semantic]' (the README's `pip install '.[examples]'` includes it).

Run: python examples/guide_response_caching.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider


async def main() -> None:
    model = SimulatedProvider(latency=0.2)  # offline, deterministic, with real token counts
    async with ResonantGenesis(provider=model) as client:
        # Enable response caching
        agent = await client.agents.create(
            name="FAQ Bot",
            cache_config={
                "response_cache": {
                    "enabled": True,
                    "ttl": 86400,  # 24 hours
                    "max_entries": 10000,
                    "similarity_threshold": 0.95,
                }
            },
        )
        goal = "What are your business hours?"

        # Ten users ask at once: one model call answers them all.
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(lambda: client.sessions.execute(agent_id=agent.id, goal=goal))
        print("10 concurrent requests, model calls:", model.calls)

        result = await client.sessions.execute(agent_id=agent.id, goal=goal)
        print(f"cached={result.cached} layer={result.layer} match={result.match}")
        print(f"tokens saved={result.tokens_saved} cost saved=${result.cost_saved:.6f}")

        # The key covers what shapes the answer: a new agent version is a new key.
        await client.agents.update(agent.id, temperature=0.7)
        result = await client.sessions.execute(agent_id=agent.id, goal=goal)
        print("after agents.update, cached:", result.cached)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
