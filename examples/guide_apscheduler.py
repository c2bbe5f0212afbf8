"""The caching guide's "Scheduled Cache Warming" with APScheduler (asyncio only).

Needs APScheduler 3: pip install 'apscheduler>=3.10,<4' (the README's
`pip install '.[examples]'` includes it). Its AsyncIOScheduler needs an asyncio event loop: on
trio, use ``client.cache.schedule_warming`` (examples/guide_warming.py).

APScheduler's AsyncIOScheduler runs each job as a task of the asyncio event loop, outside the
client's task group. ``scheduler.shutdown()`` does not stop such a task in time: it only queues
the shutdown on the loop, and the shutdown then cancels a running job without waiting for it
(``wait=True`` cannot wait on asyncio). A job still running when the client closes would use a
closed client. So the jobs here go through :class:`ClientJobs`, which is closed, and waits for
them, before the client is.

On trio, or to have none of this to do, use ``client.cache.schedule_warming("0 0 * * *",
warm_cache)``: its schedules run in the client's task group (examples/guide_warming.py).

Run: python examples/guide_apscheduler.py
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

# Schedule cache warming
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rgruntime import ResonantGenesis


class ClientJobs:
    """APScheduler jobs that never outlive the client they use.

    Wrap each job with :meth:`job`; ``await jobs.close(scheduler)`` before the client closes
    shuts the scheduler down, cancels the runs in progress and returns once they have ended.
    A run that APScheduler starts after that returns at once.
    """

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()
        self._closed = False

    def job(self, function: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(function)
        async def run() -> None:
            if self._closed:
                return  # submitted just before close(): the client is going
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await function()
            finally:
                self._running.discard(task)

        return run

    async def close(self, scheduler: AsyncIOScheduler) -> None:
        self._closed = True
        if scheduler.running:
            scheduler.shutdown(wait=False)  # no new runs (queued on the loop)
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


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

        jobs = ClientJobs()
        scheduler = AsyncIOScheduler()
        # Daily at midnight; next_run_time runs it once now too, so that this example shows it.
        job = scheduler.add_job(jobs.job(warm_cache), "cron", hour=0, next_run_time=datetime.now())
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
            # Before the client closes: no job may run on after it.
            await jobs.close(scheduler)


if __name__ == "__main__":
    asyncio.run(main())
