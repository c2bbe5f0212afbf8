"""Distributed caching: two workers on one Redis share their answers and their invalidations.

Each worker here is a client of its own (in a real service: one per process or machine). The
first computes an answer; the second is served it from Redis; an invalidation made by the
second stops the first serving its near copy.

Run: REDIS_URL=redis://localhost:6379 python examples/distributed.py [asyncio|trio]
(needs a Redis server, and ``pip install 'rgruntime[redis]'``).
"""

from __future__ import annotations

import os
import sys

import anyio

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider


async def main() -> None:
    backend = {"type": "redis", "url": os.environ["REDIS_URL"], "prefix": "example:"}
    provider = SimulatedProvider(latency=0.2)  # a model call takes 0.2 s here
    async with (
        ResonantGenesis(cache_backend=backend, provider=provider) as first,
        ResonantGenesis(cache_backend=backend, provider=provider) as second,
    ):
        await first.runtime.layer("response").clear()  # a clean start for the example
        goal = "What are your opening hours?"
        agent = await first.agents.create(name="Support", agent_id="support")
        await second.agents.create(name="Support", agent_id="support")

        answer = await first.sessions.execute(agent.id, goal, cache_tags=["hours"])
        print(f"first worker, computed: cached={answer.cached}")
        shared = await second.sessions.execute(agent.id, goal, cache_tags=["hours"])
        print(f"second worker, same goal: cached={shared.cached} from {shared.layer}")

        # The hours changed: one worker invalidates, every worker stops serving the answer.
        await second.cache.invalidate(tags=["hours"])
        with anyio.fail_after(5):
            while True:
                again = await first.sessions.execute(agent.id, goal, cache_tags=["hours"])
                if not again.cached:
                    break
                await anyio.sleep(0.01)  # the news travels through Redis
        print(f"first worker after the second invalidated: cached={again.cached}")
        health = first.runtime.layer("response").statistics().store
        assert health is not None
        print(f"store: {health.kind}, state {health.state}, coherent {health.coherent}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
