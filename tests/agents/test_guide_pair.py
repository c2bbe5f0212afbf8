"""The guide's own pair through the client's default semantic cache, on the real local model.

"What's the weather?" / "How's the weather today?" scores 0.81 on all-MiniLM-L6-v2: no
similarity vouches for it. It is a hit by default because the verifier finds the two the same
question by rule ("today" in a present-tense question is the implicit default), and a cold
error bound serves such pairs until a wrong outcome shows the rules are not enough
(docs/semantic.md). Other time words stay misses.
"""

from __future__ import annotations

import pytest

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider

pytestmark = pytest.mark.anyio

DEFAULT = {"semantic_cache": {"enabled": True}}


@pytest.fixture
def provider() -> SimulatedProvider:
    """No model latency here (no virtual clock): conftest's ``client`` uses this provider."""
    return SimulatedProvider(latency=0)


async def test_the_guides_pair_is_a_hit_by_default(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="Weather Bot", cache_config=DEFAULT)
    first = await client.sessions.execute(agent_id=agent.id, goal="What's the weather?")
    second = await client.sessions.execute(agent_id=agent.id, goal="How's the weather today?")
    assert (second.cached, second.match, provider.calls) == (True, "semantic", 1)
    assert second.output == first.output
    stats = client.cache.get_semantic_stats()["response:minilm"].error_bound["0.02"]
    assert (stats.served, stats.verified, stats.judged) == (1, 0, 0)


@pytest.mark.parametrize(
    "other", ["How's the weather tomorrow?", "What was the weather today?", "Weather tonight?"]
)
async def test_another_time_is_not_served(
    client: ResonantGenesis, provider: SimulatedProvider, other: str
) -> None:
    agent = await client.agents.create(name="Weather Bot", cache_config=DEFAULT)
    await client.sessions.execute(agent_id=agent.id, goal="What's the weather today?")
    answer = await client.sessions.execute(agent_id=agent.id, goal=other)
    assert not answer.cached
    assert provider.calls == 2


async def test_after_a_wrong_outcome_the_rule_is_no_longer_trusted_cold(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    from rgruntime.semantic import semantic_index

    agent = await client.agents.create(name="Weather Bot", cache_config=DEFAULT)
    await client.sessions.execute(agent_id=agent.id, goal="What's the weather?")
    policy = (await semantic_index(client.runtime, "response")).error_bound(0.02)
    policy.record("elsewhere", "elsewhere", 0.9, False)
    second = await client.sessions.execute(agent_id=agent.id, goal="How's the weather today?")
    assert not second.cached  # verified by the judge instead
    assert provider.calls == 2
