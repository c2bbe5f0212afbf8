"""Invalidation means a fresh answer (issue 13, item 1).

After each kind of invalidation of an answer (by goal, full key, agent, pattern, tag,
hierarchical tag, event, and the automatic rules on agent, tool and memory updates), the next
identical request computes again: ``cached=False``, a model call made, a cost paid. Before, the
model layer kept the raw output (tagged only with the model) and the request came back
``cached=True, layer="model", cost=0.0``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rgruntime import ResonantGenesis
from rgruntime.agents.memory import MemoryAPI
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GOAL = "Get product info"

Invalidation = Callable[[ResonantGenesis, str, str], Awaitable[Any]]


async def _by_goal(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(agent_id=agent_id, key=GOAL)


async def _by_full_key(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(agent_id=agent_id, key=key)


async def _by_agent(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(agent_id=agent_id)


async def _by_pattern(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(pattern=f"response:{agent_id}:*")


async def _by_tag(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(tags=["products:electronics"])


async def _by_parent_tag(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.invalidate(tags=["products"])


async def _by_delete(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.cache.delete(key)


async def _by_event(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    @client.events.on("data.updated")
    async def invalidate_cache(event: Any) -> None:
        await client.cache.invalidate(tags=[event.data_type])

    return await client.events.emit("data.updated", data_type="products")


async def _by_agent_update(client: ResonantGenesis, agent_id: str, key: str) -> Any:
    return await client.agents.update(agent_id, name="Renamed Bot")


INVALIDATIONS: dict[str, Invalidation] = {
    "goal": _by_goal,
    "full_key": _by_full_key,
    "agent": _by_agent,
    "pattern": _by_pattern,
    "tag": _by_tag,
    "parent_tag": _by_parent_tag,
    "delete": _by_delete,
    "event": _by_event,
    "agent_update": _by_agent_update,
}


@pytest.mark.parametrize("kind", sorted(INVALIDATIONS))
async def test_the_request_after_an_invalidation_computes_again(
    client: ResonantGenesis, provider: SimulatedProvider, kind: str
) -> None:
    agent = await client.agents.create(name="Catalog Bot", agent_id="agent_123")
    tags = ["products:electronics", "catalog"]
    first = await client.sessions.execute(agent_id=agent.id, goal=GOAL, cache_tags=tags)
    assert first.cached is False
    again = await client.sessions.execute(agent_id=agent.id, goal=GOAL, cache_tags=tags)
    assert (again.cached, again.layer) == (True, "response")
    calls = provider.calls
    assert first.cache_key is not None

    await INVALIDATIONS[kind](client, agent.id, first.cache_key)

    fresh = await client.sessions.execute(agent_id=agent.id, goal=GOAL, cache_tags=tags)
    assert (fresh.cached, fresh.layer) == (False, None)
    assert fresh.cost > 0
    assert provider.calls == calls + 1
    # And it is cached again: the fresh computation is served from then on.
    after = await client.sessions.execute(agent_id=agent.id, goal=GOAL, cache_tags=tags)
    assert (after.cached, after.layer) == (True, "response")


async def test_a_tool_result_made_for_an_invalidated_answer_is_computed_again(
    provider: SimulatedProvider,
) -> None:
    provider = SimulatedProvider(latency=1.0, tool_script={"lookup": {"sku": "A1"}})
    fetched = []

    async def lookup(sku: str) -> dict[str, str]:
        """Look a product up."""
        fetched.append(sku)
        return {"sku": sku, "price": "10"}

    async with ResonantGenesis(provider=provider) as client:
        client.tools.register(lookup)
        agent = await client.agents.create(name="Shop", tools=["lookup"])
        await client.sessions.execute(agent_id=agent.id, goal=GOAL, cache_tags=["products"])
        # The tool result carries the request's tags.
        assert await client.cache.invalidate(tags=["products"]) >= 2
        result = await client.sessions.execute(
            agent_id=agent.id, goal=GOAL, cache_tags=["products"]
        )
    assert result.cached is False
    assert fetched == ["A1", "A1"]


async def test_a_tool_update_makes_the_answers_that_used_it_compute_again() -> None:
    provider = SimulatedProvider(latency=1.0, tool_script={"lookup": {"sku": "A1"}})

    async def lookup(sku: str) -> dict[str, str]:
        """Look a product up."""
        return {"sku": sku}

    async with ResonantGenesis(provider=provider) as client:
        client.tools.register(lookup)
        agent = await client.agents.create(name="Shop", tools=["lookup"])
        await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        calls = provider.calls
        await client.tools.update("lookup", description="Look a product up, v2.")
        result = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert (result.cached, result.layer) == (False, None)
    assert provider.calls > calls


async def test_a_memory_update_makes_the_answers_that_read_memory_compute_again(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    memory: MemoryAPI = client.memory

    async def runner(context: Any) -> Any:
        found = await memory.search(context.agent.id, "refunds", k=1)
        del found  # the prompt below does not change: only the invalidation forces a model call
        return (await context.complete()).text

    agent = await client.agents.create(name="Support", runner=runner)
    await memory.add(agent.id, "Refunds take 5 days.")
    await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    calls = provider.calls
    await memory.add(agent.id, "Refunds now take 3 days.")  # on_memory_update (the default)
    result = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert (result.cached, result.layer) == (False, None)
    assert provider.calls == calls + 1


async def test_shared_model_outputs_stay_shared_where_nothing_was_invalidated(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    for agent_id in ("support_eu", "support_us"):
        await client.agents.create(name="Support Bot", agent_id=agent_id, system_prompt="Be kind.")
    await client.sessions.execute(agent_id="support_eu", goal=GOAL)
    shared = await client.sessions.execute(agent_id="support_us", goal=GOAL)
    assert (shared.cached, shared.layer) == (True, "model")
    calls = provider.calls

    # An unrelated invalidation leaves them shared.
    await client.cache.invalidate(tags=["unrelated"])
    await client.agents.create(name="Support Bot", agent_id="support_ch", system_prompt="Be kind.")
    third = await client.sessions.execute(agent_id="support_ch", goal=GOAL)
    assert (third.cached, third.layer) == (True, "model")
    assert provider.calls == calls


async def test_agents_sharing_an_output_do_not_refresh_each_other_forever(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    for agent_id in ("support_eu", "support_us"):
        await client.agents.create(name="Support Bot", agent_id=agent_id, system_prompt="Be kind.")
        await client.sessions.execute(agent_id=agent_id, goal=GOAL)
    await client.cache.invalidate(agent_id="support_eu")
    await client.cache.invalidate(agent_id="support_us")
    for agent_id in ("support_eu", "support_us"):
        await client.sessions.execute(agent_id=agent_id, goal=GOAL)
    calls = provider.calls
    # From now on, without another invalidation, nothing runs a model again.
    for _ in range(3):
        for agent_id in ("support_eu", "support_us"):
            result = await client.sessions.execute(agent_id=agent_id, goal=GOAL)
            assert result.cached is True
    assert provider.calls == calls
