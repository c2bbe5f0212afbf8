"""Sessions: multi-turn execution, history limits, resume, and sessions that are gone."""

from __future__ import annotations

import anyio
import pytest

from rgruntime import ConfigError, InvalidArgumentError, ResonantGenesis, SessionNotFoundError
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


@pytest.fixture
async def agent_id(client: ResonantGenesis) -> str:
    return (await client.agents.create(name="Assistant", agent_id="agent_123")).id


async def test_history_is_trimmed_to_the_limit(client: ResonantGenesis, agent_id: str) -> None:
    session = await client.sessions.create(agent_id, cache_config={"history_limit": 4})
    goals = [f"Question {turn}" for turn in range(5)]
    for goal in goals:
        await client.sessions.execute(agent_id, goal, session_id=session.id)

    session = await client.sessions.resume(session.id)
    assert session.turns == 5
    assert len(session.history) == 4
    assert [message.content for message in session.history if message.role == "user"] == goals[-2:]


async def test_history_shapes_each_turn(
    client: ResonantGenesis, agent_id: str, provider: SimulatedProvider
) -> None:
    session = await client.sessions.create(agent_id)
    first = await client.sessions.execute(agent_id, "Again?", session_id=session.id)
    second = await client.sessions.execute(agent_id, "Again?", session_id=session.id)
    # Same goal, longer conversation: a new question for the model.
    assert second.cache_key != first.cache_key
    assert (second.cached, provider.calls) == (False, 2)
    assert provider.last_request is not None
    assert [m.content for m in provider.last_request.messages] == ["Again?", first.output, "Again?"]
    assert (first.session_id, second.session_id) == (session.id, session.id)


async def test_the_same_conversation_in_a_new_session_is_a_hit(
    client: ResonantGenesis, agent_id: str, provider: SimulatedProvider
) -> None:
    one = await client.sessions.create(agent_id)
    two = await client.sessions.create(agent_id)
    for goal in ("Hi", "How are you?"):
        fresh = await client.sessions.execute(agent_id, goal, session_id=one.id)
        replayed = await client.sessions.execute(agent_id, goal, session_id=two.id)
        assert (replayed.layer, replayed.output) == ("response", fresh.output)
    assert provider.calls == 2
    assert (await client.sessions.resume(two.id)).history == (
        await client.sessions.resume(one.id)
    ).history


async def test_resume_with_and_without_the_cached_history(
    client: ResonantGenesis, agent_id: str
) -> None:
    session = await client.sessions.create(agent_id, state={"user": "ada"})
    await client.sessions.execute(agent_id, "Remember me", session_id=session.id)

    resumed = await client.sessions.resume(session_id=session.id, use_cache=True)
    assert (resumed.state, resumed.turns, len(resumed.history)) == ({"user": "ada"}, 1, 2)

    restarted = await client.sessions.resume(session_id=session.id, use_cache=False)
    assert (restarted.id, restarted.state, restarted.history) == (session.id, {"user": "ada"}, ())
    assert (await client.sessions.resume(session.id)).history == ()


async def test_what_a_session_keeps_follows_its_cache_config(
    client: ResonantGenesis, agent_id: str
) -> None:
    session = await client.sessions.create(
        agent_id, cache_config={"state_cache": False, "context_cache": False}, state={"a": 1}
    )
    await client.sessions.execute(agent_id, "Hello", session_id=session.id)
    resumed = await client.sessions.resume(session.id)
    assert (resumed.state, resumed.history, resumed.turns) == ({}, (), 1)


async def test_an_unknown_session_raises_a_clear_error(
    client: ResonantGenesis, agent_id: str
) -> None:
    with pytest.raises(SessionNotFoundError) as raised:
        await client.sessions.resume(session_id="sess_123", use_cache=True)
    message = str(raised.value)
    assert "'sess_123'" in message
    assert "client.sessions.create" in message
    assert raised.value.session_id == "sess_123"
    with pytest.raises(SessionNotFoundError, match="sess_123"):
        await client.sessions.execute(agent_id, "Hi", session_id="sess_123")


async def test_an_expired_session_is_gone(client: ResonantGenesis, agent_id: str) -> None:
    session = await client.sessions.create(agent_id, cache_config={"ttl": 600})
    await anyio.sleep(599)
    await client.sessions.execute(agent_id, "Still here?", session_id=session.id)
    # Each turn saves the session again: its 600 seconds start over.
    await anyio.sleep(599)
    assert (await client.sessions.resume(session.id)).turns == 1
    await anyio.sleep(2)
    with pytest.raises(SessionNotFoundError, match="expired"):
        await client.sessions.resume(session_id=session.id, use_cache=True)


async def test_a_session_belongs_to_its_agent(client: ResonantGenesis, agent_id: str) -> None:
    other = await client.agents.create(name="Other")
    session = await client.sessions.create(agent_id)
    with pytest.raises(InvalidArgumentError, match="session_id"):
        await client.sessions.execute(other.id, "Hi", session_id=session.id)


@pytest.mark.parametrize(
    ("cache_config", "field"),
    [
        ({"history_limit": 0}, "cache_config.history_limit"),
        ({"history": 5}, "cache_config.history"),
        ({"state_cache": "yes"}, "cache_config.state_cache"),
        ({"ttl": -1}, "cache_config.ttl"),
    ],
)
async def test_a_bad_session_cache_config_names_the_field(
    client: ResonantGenesis, agent_id: str, cache_config: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        await client.sessions.create(agent_id, cache_config=cache_config)
    assert raised.value.field == field


async def test_concurrent_turns_of_one_session_do_not_lose_history(
    client: ResonantGenesis, agent_id: str
) -> None:
    session = await client.sessions.create(agent_id)
    async with anyio.create_task_group() as group:
        for goal in ("First", "Second", "Third"):
            group.start_soon(client.sessions.execute, agent_id, goal, session.id)
    resumed = await client.sessions.resume(session.id)
    assert resumed.turns == 3
    users = [message.content for message in resumed.history if message.role == "user"]
    assert sorted(users) == ["First", "Second", "Third"]
