"""Empty, errored and truncated answers are returned but never cached: the next call runs again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rgruntime import AgentOutput, ResonantGenesis, RunContext
from rgruntime.providers import ProviderHTTPError, SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GOAL = "What is your return policy?"


def cached_entries(client: ResonantGenesis) -> dict[str, int]:
    layers = client.cache.get_stats().layers
    return {name: layers[name].entries for name in ("response", "model")}


@pytest.mark.parametrize(
    ("settings", "finish_reason"),
    [
        ({"empty_rate": 1.0}, "stop"),
        ({"truncate_rate": 1.0}, "length"),
    ],
    ids=["empty", "truncated"],
)
async def test_bad_model_answers_are_not_cached(
    settings: dict[str, Any], finish_reason: str
) -> None:
    provider = SimulatedProvider(latency=0, **settings)
    async with ResonantGenesis(provider=provider) as client:
        agent = await client.agents.create(name="Unlucky")
        for calls in (1, 2):
            result = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
            assert (result.cached, result.finish_reason) == (False, finish_reason)
            assert provider.calls == calls
        assert cached_entries(client) == {"response": 0, "model": 0}
        assert client.cache.get_savings().tokens_saved == 0


async def test_provider_errors_are_not_cached() -> None:
    provider = SimulatedProvider(latency=0, error_rate=1.0)
    async with ResonantGenesis(provider=provider) as client:
        agent = await client.agents.create(name="Offline")
        for _ in range(2):
            with pytest.raises(ProviderHTTPError):
                await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        assert provider.calls == 2
        assert cached_entries(client) == {"response": 0, "model": 0}


async def test_a_failed_first_call_is_retried_then_cached() -> None:
    provider = SimulatedProvider(latency=0, fail_first=1)
    async with ResonantGenesis(provider=provider) as client:
        agent = await client.agents.create(name="Flaky")
        with pytest.raises(ProviderHTTPError):
            await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        retried = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        hit = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        assert (retried.cached, hit.cached, hit.output) == (False, True, retried.output)
        assert provider.calls == 2


async def test_a_runner_that_raises_is_run_again(client: ResonantGenesis) -> None:
    attempts: list[str] = []

    async def runner(context: RunContext) -> str:
        attempts.append(context.goal)
        if len(attempts) == 1:
            raise ConnectionError("the framework lost its connection")
        return "Returns are free within 30 days."

    agent = await client.agents.create(name="Framework", runner=runner)
    with pytest.raises(ConnectionError):
        await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    answered = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    hit = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert (answered.cached, hit.cached) == (False, True)
    assert len(attempts) == 2


RUNNERS: dict[str, Callable[[RunContext], Any]] = {}


def runner(function: Callable[[RunContext], Any]) -> Callable[[RunContext], Any]:
    RUNNERS[function.__name__] = function
    return function


@runner
async def truncated_by_max_tokens(context: RunContext) -> str:
    return (await context.complete(max_tokens=3)).text


@runner
async def truncated_and_says_so(context: RunContext) -> AgentOutput:
    completion = await context.complete(max_tokens=3)
    return AgentOutput(text=completion.text, finish_reason=completion.finish_reason)


@runner
async def filtered(context: RunContext) -> AgentOutput:
    return AgentOutput(text="[withheld]", finish_reason="content_filter")


@runner
async def blank(context: RunContext) -> str:
    await context.complete()
    return "   "


@pytest.mark.parametrize("name", sorted(RUNNERS))
async def test_incomplete_runner_answers_are_not_cached(client: ResonantGenesis, name: str) -> None:
    runs = 0

    async def counted(context: RunContext) -> Any:
        nonlocal runs
        runs += 1
        return await RUNNERS[name](context)

    agent = await client.agents.create(name=name, runner=counted)
    first = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    second = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    # The runner ran again (its model calls may come from the model cache, its answer not).
    assert (runs, first.layer) == (2, None)
    assert second.layer != "response"
    assert cached_entries(client)["response"] == 0


async def test_a_builtin_loop_out_of_turns_is_not_cached() -> None:
    # The model asks for the tool every time: the loop gives up after its last turn.
    provider = SimulatedProvider(latency=0, tool_script=lambda request: [("web_search", {})])
    async with ResonantGenesis(provider=provider) as client:

        async def web_search() -> str:
            return "nothing found"

        client.tools.register(web_search)
        agent = await client.agents.create(name="Stubborn", tools=["web_search"])
        result = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
        assert (result.cached, result.finish_reason) == (False, "max_steps")
        assert cached_entries(client)["response"] == 0
        assert result.model_calls == provider.calls > 1
