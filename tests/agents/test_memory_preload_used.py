"""``"preload": True`` without ``preload_queries`` preloads the agent's most used memory lookups
(issue 13, item 3): by the searches recorded, the most frequent first; with no history, its newest
memories; at most the memory cache's ``max_entries``. Before, it preloaded nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rgruntime import ResonantGenesis
from rgruntime.agents.memory import memory_key
from rgruntime.providers import SimulatedProvider

pytestmark = pytest.mark.anyio

MEMORY_CONFIG = {"cache": {"enabled": True, "ttl": 900, "max_entries": 2, "preload": True}}


@pytest.fixture
async def hashing_client(anyio_backend: str) -> AsyncIterator[ResonantGenesis]:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0), embedder="hashing") as client:
        yield client


async def test_preload_true_loads_the_most_used_lookups(hashing_client: ResonantGenesis) -> None:
    client = hashing_client
    agent = await client.agents.create(name="Knowledge Agent", memory_config=MEMORY_CONFIG)
    for text in ("Refunds take 5 days.", "Shipping is free.", "Open 9 to 5."):
        await client.memory.add(agent.id, text)
    for query, times in (("hours", 1), ("refunds", 3), ("shipping", 2)):
        for _ in range(times):
            await client.memory.search(agent.id, query)

    # A new memory configuration drops the cached lookups, then preloads.
    await client.agents.update(agent.id, memory_config={"cache": {"ttl": 600}})
    memory = client.runtime.layer("memory")
    assert memory_key(agent.id, "refunds", 5) in memory
    assert memory_key(agent.id, "shipping", 5) in memory
    assert memory_key(agent.id, "hours", 5) not in memory  # past max_entries=2
    assert client.memory.preload_plan(client.agents.get(agent.id)) == [
        ("refunds", 5),
        ("shipping", 5),
    ]


async def test_without_history_the_newest_memories_are_preloaded(
    hashing_client: ResonantGenesis,
) -> None:
    client = hashing_client
    agent = await client.agents.create(name="Knowledge Agent", memory_config=MEMORY_CONFIG)
    for text in ("Oldest fact.", "Middle fact.", "Newest fact."):
        await client.memory.add(agent.id, text)
    report = await client.memory.preload(agent_id=agent.id)
    assert list(report.loaded) == ["Newest fact.", "Middle fact."]
    hit = await client.memory.search(agent.id, "Newest fact.")
    assert hit[0].text == "Newest fact."
    assert client.cache.get_stats().layers["memory"].hits == 1


async def test_preload_queries_still_win(hashing_client: ResonantGenesis) -> None:
    client = hashing_client
    config = {"cache": {**MEMORY_CONFIG["cache"], "preload_queries": ["pricing details"]}}
    agent = await client.agents.create(name="Knowledge Agent", memory_config=config)
    await client.memory.search(agent.id, "refunds")
    assert client.memory.preload_plan(agent) == [("pricing details", 5)]
