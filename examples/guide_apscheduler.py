"""The caching guide's "Scheduled Cache Warming" with APScheduler (asyncio only).

APScheduler's AsyncIOScheduler runs its jobs on the asyncio event loop; on trio, use
``client.cache.schedule_warming("0 0 * * *", warm_cache)`` instead (examples/guide_warming.py).

Run: python examples/guide_apscheduler.py
"""

from __future__ import annotations

import asyncio
from datetime import datetime

# Schedule cache warming
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rgruntime import ResonantGenesis


async def main() -> None:
    async with ResonantGenesis() as client:
        await client.agents.create(name="Support Agent", agent_id="support_agent")
        done = asyncio.Event()

        # Warm cache with common queries
        async def warm_cache() -> None:
            common_queries = [
                "What are your business hours?",
                "How do I reset my password?",
                "What is your return policy?",
            ]

            for query in common_queries:
                await client.sessions.execute(
                    agent_id="support_agent",
                    goal=query,
                    cache_ttl=86400,  # 24 hours
                )
            done.set()

        scheduler = AsyncIOScheduler()
        # Daily at midnight; next_run_time runs it once now too, so that this example shows it.
        job = scheduler.add_job(warm_cache, "cron", hour=0, next_run_time=datetime.now())
        scheduler.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
            result = await client.sessions.execute(
                agent_id="support_agent", goal="What is your return policy?"
            )
            print(f"next run: {job.next_run_time:%H:%M}")
            print(
                f"APScheduler warmed the cache; next request cached: {result.layer == 'response'}"
            )
        finally:
            # The job's task runs on the loop outside the client's task group: stop it first.
            scheduler.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main())
