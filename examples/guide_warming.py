"""The caching guide's "Cache Warming": warm on startup, with progress, and on a cron schedule.

Run: python examples/guide_warming.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis, WarmProgress

COMMON_QUERIES = [
    "What are your business hours?",
    "How do I reset my password?",
    "What is your return policy?",
]


async def main() -> None:
    async with ResonantGenesis() as client:
        await client.agents.create(name="Support Agent", agent_id="support_agent")

        # Warm cache on startup: bounded concurrency, a progress callback, a report.
        def progress(step: WarmProgress) -> None:
            print(f"  [{step.done}/{step.total}] {step.outcome}: {step.goal}")

        report = await client.cache.warm(
            agent_id="support_agent",
            goals=COMMON_QUERIES,
            cache_ttl=86400,  # 24 hours
            concurrency=4,
            progress=progress,
        )
        print(f"warmed: {len(report.warmed)}, already cached: {len(report.already_cached)}")

        result = await client.sessions.execute(agent_id="support_agent", goal=COMMON_QUERIES[0])
        print(f"first user request answered from the cache: {result.layer == 'response'}")

        # Scheduled cache warming, inside the runtime: daily at midnight (UTC).
        schedule = await client.cache.schedule_warming(
            "0 0 * * *", agent_id="support_agent", goals=COMMON_QUERIES, cache_ttl=86400
        )
        print(f"next scheduled warming: {schedule.next_run:%Y-%m-%d %H:%M %Z}")
        # Leaving the block stops the schedule with the runtime.


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
