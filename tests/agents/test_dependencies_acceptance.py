"""Issue 5's acceptance test, end to end: an execution that used a ``@cache`` tool result and a
lookup in the real memory store; invalidating the tool result, or adding a memory, makes the next
identical execution a miss, while an unrelated answer stays cached.

Real clocks: the built-in memory store embeds and searches in worker threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rgruntime import ResonantGenesis, RunContext
from rgruntime.providers import SimulatedProvider
from rgruntime.tools import cache

pytestmark = pytest.mark.anyio

GOAL = "What is the refund policy for Paris?"


class Shop:
    def __init__(self, client: ResonantGenesis) -> None:
        self.client = client
        self.weather_calls: list[str] = []
        self.memory_calls = 0

    async def setup(self) -> None:
        client = self.client

        @cache(ttl=300, key_params=["location"], name="weather_api")
        async def get_weather(location: str) -> dict[str, int]:
            self.weather_calls.append(location)
            return {"temp": 17}

        async def runner(context: RunContext) -> str:
            weather = await get_weather("paris")
            found = await client.memory.search(context.agent.id, "refund policy", k=3)
            answer = await context.complete()
            notes = " | ".join(sorted(result.text for result in found))
            return f"{answer.text} [{weather['temp']} C; {notes}]"

        self.agent = await client.agents.create(name="Shop", runner=runner)
        self.plain = await client.agents.create(name="Plain")
        await client.memory.add(self.agent.id, "refund policy: five days")

    async def run(self) -> tuple[str | None, str]:
        result = await self.client.sessions.execute(self.agent.id, GOAL)
        return result.layer, result.output

    async def unrelated(self) -> str | None:
        return (await self.client.sessions.execute(self.plain.id, GOAL)).layer


@pytest.fixture
async def shop(anyio_backend: str) -> AsyncIterator[Shop]:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0), embedder="hashing") as client:
        shop = Shop(client)
        await shop.setup()
        assert (await shop.run())[0] is None  # a fresh run
        assert await shop.unrelated() != "response"  # its model call may hit the model cache
        assert (await shop.run())[0] == "response"
        assert await shop.unrelated() == "response"
        # The graph recorded both reads for the shop's answer.
        layers = {
            layer
            for key in client.runtime.layer("response")._entries
            for layer, _ in client.runtime.dependencies.dependencies_of("response", key)
        }
        assert {"tool", "memory"} <= layers
        yield shop


async def test_invalidating_the_tool_result_makes_the_next_identical_execution_a_miss(
    shop: Shop,
) -> None:
    client = shop.client
    assert await client.cache.invalidate(pattern="weather_api*") == 2  # the result, the answer
    layer, output = await shop.run()
    assert layer != "response"
    assert "17 C; refund policy: five days" in output
    assert shop.weather_calls == ["paris", "paris"]
    assert await shop.unrelated() == "response"
    assert (await shop.run())[0] == "response"


async def test_adding_a_memory_makes_the_next_identical_execution_a_miss(shop: Shop) -> None:
    client = shop.client
    await client.memory.add(shop.agent.id, "refund policy for Paris: ten days")
    layer, output = await shop.run()
    assert layer != "response"
    assert "ten days" in output
    # Computed again, tools included: invalidation means a fresh answer (issue 13, item 1).
    assert shop.weather_calls == ["paris", "paris"]
    assert await shop.unrelated() == "response"
    assert (await shop.run())[0] == "response"
