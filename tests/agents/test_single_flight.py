"""Concurrent identical requests share one model call (the layers' single flight)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from rgruntime import ExecutionResult, ResonantGenesis
from rgruntime.providers import (
    CompletionRequest,
    Message,
    ProviderHTTPError,
    SimulatedProvider,
)
from tests.agents.conftest import MODEL_LATENCY

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

CONCURRENT = 10


async def execute_concurrently(
    client: ResonantGenesis, agent_id: str, goal: str
) -> tuple[list[ExecutionResult], list[Exception]]:
    """:data:`CONCURRENT` identical executes started together: their results and errors."""
    results: list[ExecutionResult] = []
    errors: list[Exception] = []

    async def one() -> None:
        try:
            results.append(await client.sessions.execute(agent_id=agent_id, goal=goal))
        except Exception as error:
            errors.append(error)

    with anyio.fail_after(60):  # a lost wake-up fails instead of hanging
        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENT):
                group.start_soon(one)
    return results, errors


async def test_ten_identical_executes_make_one_model_call(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    started = anyio.current_time()
    results, errors = await execute_concurrently(client, agent.id, "What are your business hours?")

    assert provider.calls == 1
    assert (len(results), errors) == (CONCURRENT, [])
    assert len({result.output for result in results}) == 1
    assert len([result for result in results if not result.cached]) == 1
    # They waited for the one call together, not one after another.
    assert anyio.current_time() - started == pytest.approx(MODEL_LATENCY, abs=1e-3)
    # The waiters spent nothing and are counted as cached answers.
    waiters = [result for result in results if result.cached]
    assert all(result.cost == 0 and result.tokens_saved > 0 for result in waiters)
    assert client.cache.get_savings().cached_responses == CONCURRENT - 1


async def test_the_answer_is_cached_once_for_later_requests(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    results, _ = await execute_concurrently(client, agent.id, "How do I reset my password?")
    later = await client.sessions.execute(agent_id=agent.id, goal="How do I reset my password?")
    assert (later.cached, later.layer, provider.calls) == (True, "response", 1)
    assert later.output == results[0].output


async def test_concurrent_uncacheable_answers_share_the_call_and_are_not_stored() -> None:
    provider = SimulatedProvider(latency=MODEL_LATENCY, empty_rate=1.0)
    async with ResonantGenesis(provider=provider) as empty_client:
        agent = await empty_client.agents.create(name="Mute")
        results, errors = await execute_concurrently(empty_client, agent.id, "Say something")
        assert (provider.calls, errors) == (1, [])
        assert [result.output for result in results] == [""] * CONCURRENT
        assert not any(result.cached for result in results)
        # One call was paid for, once.
        assert len([result for result in results if result.usage.total_tokens]) == 1
        assert sum(result.cost for result in results) == max(result.cost for result in results)
        await empty_client.sessions.execute(agent_id=agent.id, goal="Say something")
        assert provider.calls == 2


async def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    provider = SimulatedProvider(latency=MODEL_LATENCY, fail_first=1)
    async with ResonantGenesis(provider=provider) as client:
        agent = await client.agents.create(name="Flaky")
        results, errors = await execute_concurrently(
            client, agent.id, "What is your return policy?"
        )
        assert (provider.calls, results, len(errors)) == (1, [], CONCURRENT)
        assert all(isinstance(error, ProviderHTTPError) for error in errors)
        retry = await client.sessions.execute(agent_id=agent.id, goal="What is your return policy?")
        assert (retry.cached, provider.calls) == (False, 2)


async def test_a_cancelled_first_caller_does_not_cancel_the_others(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    survivor: list[ExecutionResult] = []

    async def impatient() -> None:
        with anyio.move_on_after(MODEL_LATENCY / 2):
            await client.sessions.execute(agent_id=agent.id, goal="Where are you located?")

    async def patient() -> None:
        survivor.append(
            await client.sessions.execute(agent_id=agent.id, goal="Where are you located?")
        )

    async with anyio.create_task_group() as group:
        group.start_soon(impatient)
        await anyio.lowlevel.checkpoint()
        group.start_soon(patient)

    assert provider.calls == 1
    assert survivor[0].output
    again = await client.sessions.execute(agent_id=agent.id, goal="Where are you located?")
    assert (again.cached, again.output, provider.calls) == (True, survivor[0].output, 1)


async def test_ten_identical_model_completions_make_one_call(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    request = CompletionRequest("sim-small", [Message("user", "What is a cache?")])
    texts: list[str] = []

    async def one() -> None:
        texts.append((await client.models.complete(request)).completion.text)

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENT):
            group.start_soon(one)
    assert provider.calls == 1
    assert len(texts) == CONCURRENT
    assert len(set(texts)) == 1


async def test_sessions_sharing_an_uncacheable_answer_keep_their_own_ids() -> None:
    provider = SimulatedProvider(latency=MODEL_LATENCY, empty_rate=1.0)
    async with ResonantGenesis(provider=provider) as client:
        agent = await client.agents.create(name="Mute")
        # Two new sessions: same (empty) history, same goal, so the same request.
        sessions = [await client.sessions.create(agent.id) for _ in range(2)]
        results: dict[str, ExecutionResult] = {}

        async def turn(session_id: str) -> None:
            results[session_id] = await client.sessions.execute(
                agent.id, "Say something", session_id=session_id
            )

        async with anyio.create_task_group() as group:
            for session in sessions:
                group.start_soon(turn, session.id)
        assert provider.calls == 1
        assert {key: result.session_id for key, result in results.items()} == {
            session.id: session.id for session in sessions
        }
        for session in sessions:
            assert (await client.sessions.resume(session.id)).turns == 1
