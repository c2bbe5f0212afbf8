"""Every public entry point of the client checks its arguments (issue 11, item 8, client part):
a bad one raises InvalidArgumentError / ConfigError naming the field, nothing stored changes,
and a message shows at most 200 characters of the value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rgruntime import (
    AgentNotFoundError,
    ConfigError,
    InvalidArgumentError,
    ResonantGenesis,
    SessionNotFoundError,
)
from rgruntime.agents.arguments import VALUE_LIMIT, shown

pytestmark = pytest.mark.anyio

HUGE = "x" * 100_000

Call = Callable[[ResonantGenesis, str], Any]

BAD_CALLS: dict[str, tuple[Call, str]] = {
    "agents.get(123)": (lambda c, a: c.agents.get(123), "agent_id"),
    "agents.delete(None)": (lambda c, a: c.agents.delete(None), "agent_id"),
    "agents.update(name='')": (lambda c, a: c.agents.update(a, name=""), "name"),
    "agents.update(colour=1)": (lambda c, a: c.agents.update(a, colour=1), "colour"),
    "sessions.create(cache_config=5)": (lambda c, a: c.sessions.create(a, cache_config=5), ""),
    "sessions.execute(goal=None)": (lambda c, a: c.sessions.execute(a, None), "goal"),
    "sessions.execute(cache_ttl=-1)": (
        lambda c, a: c.sessions.execute(a, "x", cache_ttl=-1),
        "cache_ttl",
    ),
    "sessions.execute(session_id=5)": (
        lambda c, a: c.sessions.execute(a, "x", session_id=5),
        "session_id",
    ),
    "sessions.execute(cache='yes')": (lambda c, a: c.sessions.execute(a, "x", cache="y"), "cache"),
    "sessions.execute(cache_tags='t')": (
        lambda c, a: c.sessions.execute(a, "x", cache_tags="t"),
        "cache_tags",
    ),
    "sessions.resume(5)": (lambda c, a: c.sessions.resume(5), "session_id"),
    "sessions.delete(None)": (lambda c, a: c.sessions.delete(None), "session_id"),
    "cache.get(5)": (lambda c, a: c.cache.get(5), "key"),
    "cache.get(layer=5)": (lambda c, a: c.cache.get("k", layer=5), "layer"),
    "cache.delete(None)": (lambda c, a: c.cache.delete(None), "key"),
    "cache.invalidate(agent_id=5)": (lambda c, a: c.cache.invalidate(agent_id=5), "agent_id"),
    "cache.invalidate(agent_id, key=5)": (
        lambda c, a: c.cache.invalidate(agent_id=a, key=5),
        "key",
    ),
    "cache.invalidate(tags='products')": (lambda c, a: c.cache.invalidate(tags="p"), "tags"),
    "cache.get_savings('x')": (lambda c, a: c.cache.get_savings("x"), "period"),
    "memory.search(k=0)": (lambda c, a: c.memory.search(a, "q", k=0), "k"),
    "memory.add(metadata=5)": (lambda c, a: c.memory.add(a, "t", metadata=5), "metadata"),
    "memory.get(memory_id=5)": (lambda c, a: c.memory.get(a, 5), "memory_id"),
    "memory.preload(concurrency=0)": (
        lambda c, a: c.memory.preload(a, ["q"], concurrency=0),
        "concurrency",
    ),
    "tools.register(5)": (lambda c, a: c.tools.register(5), "function"),
    "events.on(5)": (lambda c, a: c.events.on(5), "event"),
    "events.emit(5)": (lambda c, a: c.events.emit(5), "event"),
    "cache.warm(goals='x')": (lambda c, a: c.cache.warm(agent_id=a, goals="x"), "goals"),
    "cache.schedule_warming('bad')": (
        lambda c, a: c.cache.schedule_warming("bad", agent_id=a, goals=["x"]),
        "cron",
    ),
}


async def _call(call: Call, client: ResonantGenesis, agent_id: str) -> None:
    result = call(client, agent_id)
    if isinstance(result, Awaitable):
        await result


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
async def test_a_bad_argument_names_its_field_and_changes_nothing(name: str) -> None:
    call, field = BAD_CALLS[name]
    async with ResonantGenesis(embedder="hashing") as client:
        agent = await client.agents.create(name="Support", agent_id="agent_123")
        await client.sessions.execute(agent.id, "Hours?")
        before = client.cache.get_stats().entry_count
        with pytest.raises((InvalidArgumentError, ConfigError)) as raised:
            await _call(call, client, agent.id)
        assert raised.value.field.endswith(field)
        assert client.cache.get_stats().entry_count == before
        assert client.agents.get(agent.id) == agent


async def test_not_found_messages_show_at_most_200_characters(client: ResonantGenesis) -> None:
    with pytest.raises(AgentNotFoundError) as agent_missing:
        client.agents.get(HUGE)
    assert len(str(agent_missing.value)) < VALUE_LIMIT + 60
    with pytest.raises(SessionNotFoundError) as session_missing:
        await client.sessions.resume(HUGE)
    assert len(str(session_missing.value)) < VALUE_LIMIT + 200


def test_shown_cuts_long_values() -> None:
    assert len(shown(HUGE)) <= VALUE_LIMIT
    assert len(shown(list(range(10_000)))) <= VALUE_LIMIT
    assert shown("agent_123") == "'agent_123'"
