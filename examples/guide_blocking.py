"""The caching guide's examples as written, without ``await``: the blocking client.

``rgruntime.connect`` runs the runtime on an event loop in a background thread; every call waits
for its result. Use it in scripts and notebooks; use ``async with ResonantGenesis(...)`` in
async code.

Run: python examples/guide_blocking.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import rgruntime


def main(backend: str) -> None:
    with rgruntime.connect(
        api_key="your_key",
        cache_config={"enabled": True, "default_ttl": 3600, "max_size": "100MB", "strategy": "lru"},
        backend=backend,
    ) as client:
        agent = client.agents.create(name="Research Agent", cache_config={"response_ttl": 3600})

        result = client.sessions.execute(agent_id=agent.id, goal="Get current weather", cache=False)
        result = client.sessions.execute(agent_id=agent.id, goal="Analyze document", cache_ttl=7200)
        result = client.sessions.execute(agent_id=agent.id, goal="Analyze document")
        print("blocking client, second call cached:", result.cached)

        print("removed:", client.cache.invalidate(agent_id=agent.id))
        stats = client.cache.get_stats()
        print(f"Hit rate: {stats.hit_rate:.1f}%")
        savings = client.cache.get_savings(period="30d")
        print(f"Cached responses: {savings.cached_responses}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "asyncio")
