"""``client.agents``: the registry's life cycle, validation, runners, tools and answer limits."""

from __future__ import annotations

from typing import Any

import pytest

from rgruntime import (
    AgentNotFoundError,
    AgentOutput,
    ConfigError,
    InvalidArgumentError,
    ResonantGenesis,
    RunContext,
    SessionNotFoundError,
)
from rgruntime.providers import SimulatedProvider, Usage

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GOAL = "What are your business hours?"


async def test_create_get_list(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot", agent_id="agent_123")
    other = await client.agents.create(name="Research Agent", model="sim-large")
    assert (agent.id, agent.version, agent.model) == ("agent_123", 1, "sim-small")
    assert other.id.startswith("agent_")
    assert other.id != agent.id
    assert client.agents.get("agent_123") is agent
    assert client.agents.list() == [agent, other]
    with pytest.raises(InvalidArgumentError, match="agent_id"):
        await client.agents.create(name="Duplicate", agent_id="agent_123")
    with pytest.raises(AgentNotFoundError, match="agent_404"):
        client.agents.get("agent_404")


async def test_update_makes_a_new_version_and_drops_old_answers(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="Support Bot")
    old = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    updated = await client.agents.update(agent.id, name="Support Bot v2")
    assert (updated.version, updated.name) == (2, "Support Bot v2")
    assert client.agents.get(agent.id) is updated
    assert await client.cache.get(old.cache_key) is None

    new = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    # Not the old version's answer, nor its model output: the update invalidated the answer,
    # so the new version computes it afresh (issue 13, item 1).
    assert (new.cached, new.layer, provider.calls) == (False, None, 2)
    assert new.cache_key != old.cache_key
    assert (await client.agents.update(agent.id, temperature=0.5)).version == 3
    changed = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert (changed.cached, provider.calls) == (False, 3)


async def test_delete_invalidates_answers_and_sessions(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot")
    keeper = await client.agents.create(name="Keeper")
    answer = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    kept = await client.sessions.execute(agent_id=keeper.id, goal=GOAL)
    session = await client.sessions.create(agent.id)

    assert await client.agents.delete(agent.id) is True
    assert await client.agents.delete(agent.id) is False
    assert await client.cache.get(answer.cache_key) is None
    assert await client.cache.get(kept.cache_key) is not None
    with pytest.raises(SessionNotFoundError):
        await client.sessions.resume(session.id)
    with pytest.raises(AgentNotFoundError):
        await client.sessions.execute(agent_id=agent.id, goal=GOAL)


async def test_agents_can_be_managed_before_the_client_opens() -> None:
    client = ResonantGenesis(provider=SimulatedProvider(latency=0))
    agent = await client.agents.create(name="Early", agent_id="agent_early")
    assert (await client.agents.update(agent.id, temperature=0.4)).version == 2
    doomed = await client.agents.create(name="Doomed")
    assert await client.agents.delete(doomed.id) is True
    async with client:
        result = await client.sessions.execute(agent_id="agent_early", goal=GOAL)
        assert result.output
    # ...and after it closed: the registry outlives the runtime.
    assert (await client.agents.update(agent.id, temperature=0.1)).version == 3
    assert await client.agents.delete(agent.id) is True


@pytest.mark.parametrize("temperature", [-0.1, 2.5, "hot", True, None])
async def test_a_bad_temperature_is_refused(client: ResonantGenesis, temperature: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="temperature") as raised:
        await client.agents.create(name="Bot", temperature=temperature)
    assert raised.value.field == "temperature"
    agent = await client.agents.create(name="Bot")
    with pytest.raises(InvalidArgumentError, match="temperature"):
        await client.agents.update(agent.id, temperature=temperature)
    assert client.agents.get(agent.id).version == 1


@pytest.mark.parametrize("name", ["", "   ", None, 42])
async def test_an_empty_name_is_refused(client: ResonantGenesis, name: Any) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await client.agents.create(name=name)
    assert raised.value.field == "name"
    assert client.agents.list() == []


@pytest.mark.parametrize(
    ("cache_config", "field"),
    [
        ({"colour": "blue"}, "cache_config.colour"),
        ({"response_cache": {"size": 10}}, "cache_config.response_cache.size"),
        ({"semantic_cache": {"model": "x"}}, "cache_config.semantic_cache.model"),
        ({"response_ttl": -5}, "cache_config.response_ttl"),
        ({"response_cache": {"max_entries": 0}}, "cache_config.response_cache.max_entries"),
        (
            {"response_cache": {"similarity_threshold": 1.5}},
            "cache_config.response_cache.similarity_threshold",
        ),
        ({"enabled": "yes"}, "cache_config.enabled"),
        ({"response_ttl": 3600, "response_cache": {"ttl": 60}}, "cache_config.response_ttl"),
    ],
)
async def test_a_bad_cache_config_names_the_field(
    client: ResonantGenesis, cache_config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(name="Bot", cache_config=cache_config)
    assert raised.value.field == field
    assert field in str(raised.value)


async def test_response_ttl_may_repeat_response_cache_ttl(client: ResonantGenesis) -> None:
    agent = await client.agents.create(
        name="Bot", cache_config={"response_ttl": "1h", "response_cache": {"ttl": 3600}}
    )
    assert agent.cache_config.response_ttl == 3600


async def test_update_refuses_unknown_fields_and_bad_cache_config(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Bot")
    with pytest.raises(InvalidArgumentError, match="colour") as raised:
        await client.agents.update(agent.id, colour="blue")
    assert raised.value.field == "colour"
    with pytest.raises(InvalidArgumentError, match="version"):
        await client.agents.update(agent.id, version=7)
    with pytest.raises(ConfigError, match=r"cache_config\.auto_invalidate"):
        await client.agents.update(agent.id, cache_config={"auto_invalidate": True})
    assert client.agents.get(agent.id).version == 1
    with pytest.raises(AgentNotFoundError):
        await client.agents.update("agent_404", name="Ghost")


async def test_a_runner_gets_the_goal_and_its_output_is_accounted(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    seen: list[tuple[str, str]] = []
    model_usage: list[Usage] = []

    async def runner(context: RunContext) -> AgentOutput:
        seen.append((context.agent.name, context.goal))
        completion = await context.complete()
        model_usage.append(completion.usage)
        # Tokens the framework spent on its own, outside context.complete().
        return AgentOutput(text=f"Answer: {completion.text}", usage=Usage(10, 5))

    agent = await client.agents.create(name="Framework", runner=runner)
    result = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert seen == [("Framework", GOAL)]
    assert result.output.startswith("Answer: ")
    assert result.usage == model_usage[0] + Usage(10, 5)
    assert (result.model_calls, provider.calls) == (1, 1)
    hit = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    assert (hit.cached, hit.tokens_saved, len(seen)) == (True, result.usage.total_tokens, 1)


async def test_a_runner_must_return_text(client: ResonantGenesis) -> None:
    async def runner(context: RunContext) -> Any:
        return {"answer": 42}

    agent = await client.agents.create(name="Sloppy", runner=runner)
    with pytest.raises(InvalidArgumentError, match="returned"):
        await client.sessions.execute(agent_id=agent.id, goal=GOAL)


async def test_the_builtin_loop_calls_a_registered_tool() -> None:
    provider = SimulatedProvider(latency=0, tool_script={"web_search": lambda req: {"query": "x"}})
    searches: list[str] = []
    async with ResonantGenesis(provider=provider) as client:

        async def web_search(query: str) -> dict[str, Any]:
            """Search the web."""
            searches.append(query)
            return {"results": [f"{query} is a letter"]}

        tool = client.tools.register(web_search)
        assert tool.spec.parameters["required"] == ("query",)
        agent = await client.agents.create(name="Research Agent", tools=["web_search"])
        result = await client.sessions.execute(agent_id=agent.id, goal="What is x?")

        assert searches == ["x"]
        assert (provider.calls, result.model_calls, result.finish_reason) == (2, 2, "stop")
        assert result.output
        # The tool's result reached the model.
        assert provider.last_request is not None
        assert provider.last_request.messages[-1].role == "tool"
        assert "x is a letter" in (provider.last_request.messages[-1].content or "")

        hit = await client.sessions.execute(agent_id=agent.id, goal="What is x?")
        assert (hit.cached, hit.output, searches, provider.calls) == (True, result.output, ["x"], 2)


async def test_max_entries_keeps_the_agents_newest_answers(client: ResonantGenesis) -> None:
    limited = await client.agents.create(
        name="Limited", cache_config={"response_cache": {"max_entries": 2}}
    )
    other = await client.agents.create(name="Unlimited")
    others = [await client.sessions.execute(other.id, f"Question {i}") for i in range(3)]
    answers = [await client.sessions.execute(limited.id, f"Question {i}") for i in range(3)]

    present = [await client.cache.get(result.cache_key) is not None for result in answers]
    assert present == [False, True, True]
    assert all([await client.cache.get(result.cache_key) is not None for result in others])
    again = await client.sessions.execute(limited.id, "Question 0")
    assert again.layer != "response"


async def test_an_agent_with_caching_off_calls_the_model_every_time(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="Live", cache_config={"enabled": False})
    results = [await client.sessions.execute(agent.id, GOAL) for _ in range(2)]
    assert [result.cached for result in results] == [False, False]
    assert provider.calls == 2
    stats = client.cache.get_stats().layers
    assert (stats["response"].entries, stats["model"].entries) == (0, 0)


async def test_an_agent_without_response_cache_still_shares_model_calls(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(
        name="Fresh answers", cache_config={"response_cache": {"enabled": False}}
    )
    first = await client.sessions.execute(agent.id, GOAL)
    second = await client.sessions.execute(agent.id, GOAL)
    assert (first.layer, second.layer, first.cache_key) == (None, "model", None)
    assert provider.calls == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"goal": ""}, "goal"),
        ({"goal": "   "}, "goal"),
        ({"goal": GOAL, "cache": "no"}, "cache"),
        ({"goal": GOAL, "cache_tags": "products"}, "cache_tags"),
        ({"goal": GOAL, "cache_tags": ["products:"]}, "cache_tags"),
    ],
)
async def test_execute_refuses_bad_arguments(
    client: ResonantGenesis, arguments: dict[str, Any], field: str
) -> None:
    agent = await client.agents.create(name="Bot")
    with pytest.raises(InvalidArgumentError) as raised:
        await client.sessions.execute(agent.id, **arguments)
    assert raised.value.field == field
