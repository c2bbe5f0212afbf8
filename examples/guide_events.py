"""The caching guide's "Event-Based Invalidation": handlers that invalidate by tag.

Run: python examples/guide_events.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import Event, ResonantGenesis


async def main() -> None:
    async with ResonantGenesis() as client:
        await client.agents.create(name="Catalog Bot", agent_id="agent_123")

        # Invalidate on events
        @client.events.on("data.updated")
        async def invalidate_cache(event: Event) -> None:
            await client.cache.invalidate(tags=[event.data_type])

        # A failing handler is logged and counted; the others and the runtime go on.
        @client.events.on("data.updated")
        async def flaky_audit(event: Event) -> None:
            raise RuntimeError("audit service unavailable")

        # Built-in events: every answer served from the response cache.
        hits: list[str] = []

        @client.events.on("cache.hit")
        async def count_hit(event: Event) -> None:
            hits.append(event.goal)

        for _ in range(2):
            await client.sessions.execute(
                agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
            )

        # Returns once the handlers have run: the product answers are gone.
        await client.events.emit("data.updated", data_type="products")
        after = await client.sessions.execute(agent_id="agent_123", goal="Get product info")
        await client.events.flush()  # cache.hit events are queued, not awaited

        stats = client.events.stats()
        print(f"hits before the event: {len(hits)}, failed handlers: {stats.failures}")
        print(f"after data.updated, answered from the response cache: {after.layer == 'response'}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
