"""How long answers stay cached, in virtual time: request, agent and layer TTLs."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rgruntime import BUILTIN_LAYERS, ExecutionResult, InvalidArgumentError, ResonantGenesis
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GOAL = "Analyze document"
MODEL_TTL = BUILTIN_LAYERS["model"]["ttl"]  # a day


async def lifetime_of_answer(
    client: ResonantGenesis, ttl: float, *, agent_config: dict[str, Any] | None, **execute: Any
) -> tuple[ExecutionResult, ExecutionResult]:
    """Execute GOAL, then the same one second before ``ttl`` and one second after it."""
    agent = await client.agents.create(name="Reader", cache_config=agent_config)
    fresh = await client.sessions.execute(agent.id, GOAL, **execute)
    await anyio.sleep(ttl - 1)
    before = await client.sessions.execute(agent.id, GOAL, **execute)
    await anyio.sleep(2)
    after = await client.sessions.execute(agent.id, GOAL, **execute)
    assert fresh.layer is None
    return before, after


@pytest.mark.parametrize(
    ("ttl", "agent_config", "execute"),
    [
        (3600, None, {}),  # the response layer's default
        (7200, None, {"cache_ttl": 7200}),
        (7200, None, {"cache_ttl": "2h"}),
        (600, {"response_ttl": 600}, {}),
        (86400, {"response_cache": {"ttl": 86400}}, {}),
        (300, {"response_ttl": 3600}, {"cache_ttl": 300}),  # the request wins
    ],
    ids=[
        "layer default",
        "cache_ttl",
        "cache_ttl string",
        "response_ttl",
        "response_cache.ttl",
        "cache_ttl over response_ttl",
    ],
)
async def test_an_answer_lives_for_its_ttl(
    client: ResonantGenesis,
    ttl: float,
    agent_config: dict[str, Any] | None,
    execute: dict[str, Any],
) -> None:
    before, after = await lifetime_of_answer(client, ttl, agent_config=agent_config, **execute)
    # Once the answer expired, the model's output may still be cached for its day.
    assert (before.layer, after.layer) == ("response", "model" if ttl < MODEL_TTL else None)


async def test_after_the_model_layer_day_the_model_is_asked_again(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    before, after = await lifetime_of_answer(client, MODEL_TTL, agent_config=None, cache_ttl="1d")
    assert (before.layer, after.layer, provider.calls) == ("response", None, 2)


async def test_a_ttl_beyond_the_layer_maximum_is_refused(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Reader")
    with pytest.raises(InvalidArgumentError, match="max_ttl"):
        await client.sessions.execute(agent.id, GOAL, cache_ttl="2d")
    with pytest.raises(InvalidArgumentError, match="ttl"):
        await client.sessions.execute(agent.id, GOAL, cache_ttl=-1)
