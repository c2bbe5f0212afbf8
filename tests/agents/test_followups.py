"""Behaviours settled after the first review: TTLs checked at agent creation, whole exchanges in
a session's history, blocking streams, and what waiters on an uncacheable model answer pay."""

from __future__ import annotations

import threading

import anyio
import pytest

import rgruntime
from rgruntime import ConfigError, ResonantGenesis
from rgruntime.providers import CompletionRequest, SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def test_a_response_ttl_above_the_layers_max_ttl_is_refused_at_creation(
    client: ResonantGenesis,
) -> None:
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(name="Too long", cache_config={"response_ttl": "2d"})
    assert raised.value.field == "cache_config.response_cache.ttl"
    assert "86400" in raised.value.accepted
    assert client.agents.list() == []


async def test_updating_to_a_ttl_above_the_max_changes_nothing(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Bot", cache_config={"response_ttl": 60})
    with pytest.raises(ConfigError):
        await client.agents.update(agent.id, cache_config={"response_ttl": "3d"})
    assert client.agents.get(agent.id) == agent


async def test_an_odd_history_limit_keeps_whole_exchanges(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Bot")
    session = await client.sessions.create(agent.id, cache_config={"history_limit": 3})
    for goal in ("one", "two", "three"):
        await client.sessions.execute(agent_id=agent.id, goal=goal, session_id=session.id)
    history = (await client.sessions.resume(session.id)).history
    assert [message.role for message in history] == ["user", "assistant"]
    assert history[0].content == "three"


async def test_waiters_on_an_uncacheable_model_answer_pay_nothing() -> None:
    provider = SimulatedProvider(latency=1.0, empty_rate=1.0)
    request = CompletionRequest("sim-small", [{"role": "user", "content": "hi"}])
    async with ResonantGenesis(provider=provider) as client:
        calls = []

        async def complete() -> None:
            calls.append(await client.models.complete(request))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(complete)
    assert provider.calls == 1
    assert sorted(call.cost > 0 for call in calls) == [False, False, True]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_blocking_client_streams_and_replays(backend: str) -> None:
    threads = threading.active_count()
    request = CompletionRequest("sim-small", [{"role": "user", "content": "hello"}])
    provider = SimulatedProvider(latency=0)
    with rgruntime.connect(provider=provider, backend=backend) as client:
        first = [chunk.text_delta for chunk in client.models.stream(request)]
        replayed = [chunk.text_delta for chunk in client.models.stream(request)]
    assert "".join(first) == "".join(replayed) != ""
    assert provider.calls == 1
    assert threading.active_count() == threads
