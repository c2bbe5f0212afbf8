"""Every write of a session's state goes through the session's lock (issue 11, item 7), and a
session that does not fit is refused, never evicted for space (issue 13, item 2)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rgruntime import (
    InvalidArgumentError,
    ResonantGenesis,
    RunContext,
    SessionCapacityError,
)
from rgruntime.errors import CapacityError

pytestmark = pytest.mark.anyio


class HeldTurn:
    """A runner whose turn waits, once started, until the test lets it finish."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.finish = anyio.Event()

    async def __call__(self, context: RunContext) -> str:
        self.started.set()
        await self.finish.wait()
        return f"answer to {context.goal}"


async def _race(client: ResonantGenesis, write: Any) -> tuple[Any, list[str]]:
    """Start a turn, run ``write`` while it is in flight, then let the turn finish."""
    turn = HeldTurn()
    agent = await client.agents.create(name="Support", runner=turn)
    session = await client.sessions.create(agent.id)
    order: list[str] = []
    outcome: dict[str, Any] = {}

    async def run_turn() -> None:
        await client.sessions.execute(agent_id=agent.id, goal="Hello", session_id=session.id)
        order.append("turn")

    async def run_write() -> None:
        outcome["write"] = await write(session.id)
        order.append("write")

    async with anyio.create_task_group() as group:
        group.start_soon(run_turn)
        await turn.started.wait()
        group.start_soon(run_write)
        await anyio.wait_all_tasks_blocked()  # the write waits for the turn's lock: it has not run
        assert order == []
        turn.finish.set()
    return outcome["write"], order


async def test_a_reset_waits_for_the_turn_in_flight_and_is_not_overwritten(
    client: ResonantGenesis,
) -> None:
    async def reset(session_id: str) -> Any:
        return await client.sessions.resume(session_id, use_cache=False)

    fresh, order = await _race(client, reset)
    assert order == ["turn", "write"]
    assert fresh.history == ()
    stored = await client.sessions.resume(fresh.id)
    assert stored.history == ()  # the turn did not write the old history back


async def test_a_delete_waits_for_the_turn_in_flight_and_stays_deleted(
    client: ResonantGenesis,
) -> None:
    async def delete(session_id: str) -> Any:
        return await client.sessions.delete(session_id)

    deleted, order = await _race(client, delete)
    assert (deleted, order) == (True, ["turn", "write"])
    assert client.runtime.layer("session").stats().entries == 0


@pytest.mark.parametrize("bad", [None, 7, ""])
async def test_session_entry_points_check_the_session_id(client: ResonantGenesis, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await client.sessions.resume(bad)
    assert raised.value.field == "session_id"
    with pytest.raises(InvalidArgumentError):
        await client.sessions.delete(bad)


async def test_resume_checks_use_cache(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support")
    session = await client.sessions.create(agent.id)
    with pytest.raises(InvalidArgumentError) as raised:
        await client.sessions.resume(session.id, use_cache="no")  # type: ignore[arg-type]
    assert raised.value.field == "use_cache"


def test_the_session_capacity_error_names_the_budget() -> None:
    error = SessionCapacityError("sess_1", CapacityError("session", 2048, 3000, 4096, "max_size"))
    assert isinstance(error, CapacityError)
    assert "max_size 4,096 bytes" in str(error)
    assert "sess_1" in str(error)
    assert (error.layer, error.needed, error.budget) == ("session", 2048, 4096)


async def test_a_full_session_budget_refuses_new_sessions_and_keeps_the_others() -> None:
    config = {"max_size": "100MB", "layers": {"session": {"max_size": "4KB"}}}
    async with ResonantGenesis(cache_config=config) as client:
        agent = await client.agents.create(name="Support")
        kept = []
        refused: SessionCapacityError | None = None
        for _ in range(1000):
            try:
                session = await client.sessions.create(agent.id, state={"notes": "x" * 200})
            except SessionCapacityError as error:
                refused = error
                break
            kept.append(session)
        assert refused is not None, "1000 sessions of 200+ bytes fitted in 4KB"
        assert "budget" in str(refused)
        assert kept, "the budget held no session at all"
        for session in kept:  # nothing existing was lost to make room
            assert (await client.sessions.resume(session.id)).id == session.id


async def test_a_session_larger_than_the_whole_budget_is_refused_not_lost() -> None:
    config = {"layers": {"session": {"max_size": "200B"}}}
    async with ResonantGenesis(cache_config=config) as client:
        agent = await client.agents.create(name="Support")
        with pytest.raises(SessionCapacityError) as raised:
            await client.sessions.create(agent.id, session_id="sess_big")
        assert "sess_big" in str(raised.value)
        assert "max_size 200 bytes" in str(raised.value)
        assert client.runtime.layer("session").stats().entries == 0
