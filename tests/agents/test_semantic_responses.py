"""Semantic response caching through the client, on the real local embedding model.

Real clocks (the embedding model and the index run in worker threads) and a provider without
latency. The guide's own pair ("What's the weather?" / "How's the weather today?") scores 0.81
on all-MiniLM-L6-v2, below any safe threshold (docs/semantic.md), so these tests use pairs that
the model does place close together.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from rgruntime import ConfigError, ResonantGenesis
from rgruntime.agents.config import SemanticCacheConfig
from rgruntime.errors import describe_value
from rgruntime.providers import SimulatedProvider
from tests.providers.fake_openai import FakeOpenAI, serve

pytestmark = pytest.mark.anyio

SEMANTIC = {"semantic_cache": {"enabled": True, "similarity_threshold": 0.92}}
#: The guide's semantic snippet, its vectors from an OpenAI-compatible server.
OVER_HTTP = {
    "semantic_cache": {
        "enabled": True,
        "similarity_threshold": 0.92,
        "embedding_model": "text-embedding-3-small",
    }
}
RESET = "How do I reset my password?"
RESET_AGAIN = "How can I reset my password?"


@pytest.fixture
def provider() -> SimulatedProvider:
    """No model latency here (no virtual clock): conftest's ``client`` uses this provider."""
    return SimulatedProvider(latency=0)


async def ask(client: ResonantGenesis, agent_id: str, goal: str) -> Any:
    return await client.sessions.execute(agent_id=agent_id, goal=goal)


async def proven(client: ResonantGenesis, bound: float = 0.02) -> None:
    """What earlier verified answers would have taught the error bound: a cold index serves by
    meaning only after its probation (100 right judgements in a row), so 200 right judgements
    at 0.97 (in partitions of their own)."""
    from rgruntime.semantic import semantic_index

    policy = (await semantic_index(client.runtime, "response")).error_bound(bound)
    for number in range(200):
        policy.record(f"earlier-{number}", f"earlier-{number}", 0.97, True)


async def test_a_paraphrase_is_answered_from_the_cache_with_its_similarity(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="Support Bot", cache_config=SEMANTIC)
    first = await ask(client, agent.id, RESET)
    assert (first.cached, provider.calls) == (False, 1)

    second = await ask(client, agent.id, RESET_AGAIN)
    assert second.cached
    assert (second.layer, second.match) == ("response", "semantic")
    assert second.similarity is not None
    assert 0.92 <= second.similarity <= 1
    assert second.output == first.output
    assert second.cache_key == first.cache_key
    assert provider.calls == 1
    assert second.tokens_saved == first.usage.total_tokens
    stats = client.cache.get_semantic_stats()["response:minilm"]
    assert (stats.lookups, stats.empty, stats.hits) == (2, 1, 1)
    assert stats.hit_similarities.total == 1
    assert stats.hit_similarities.quantile(0.5) == int(second.similarity * 100) / 100

    # A near miss that the model scores high is refused, and asks the model.
    other = await ask(client, agent.id, "How do I reset my router?")
    assert not other.cached
    assert provider.calls == 2


async def test_an_exact_repeat_is_an_exact_hit(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot", cache_config=SEMANTIC)
    await ask(client, agent.id, RESET)
    again = await ask(client, agent.id, RESET)
    assert (again.match, again.similarity) == ("exact", None)


@pytest.mark.parametrize(
    "config", [SEMANTIC, {"semantic_cache": {"enabled": True}}], ids=["static", "error-bound"]
)
async def test_agents_and_models_never_share_answers(
    client: ResonantGenesis, provider: SimulatedProvider, config: dict[str, Any]
) -> None:
    first = await client.agents.create(name="A", cache_config=config)
    second = await client.agents.create(name="B", cache_config=config)
    other_model = await client.agents.create(name="C", model="sim-large", cache_config=config)
    await ask(client, first.id, RESET)
    await proven(client)
    for agent in (second, other_model):
        # Not even for the identical text: another agent's or model's partition is not searched.
        # (Agent B's model call may hit the model layer: same model, same prompt.)
        assert (await ask(client, agent.id, RESET)).layer != "response"
        # Each has its own answers to find by meaning.
        assert (await ask(client, agent.id, RESET_AGAIN)).match == "semantic"
    assert provider.calls == 2  # agent A's model call, and model C's


async def test_invalidated_answers_are_not_found_by_meaning(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="Support Bot", cache_config=SEMANTIC)
    await ask(client, agent.id, RESET)
    assert await client.cache.invalidate(agent_id=agent.id) >= 1
    assert not (await ask(client, agent.id, RESET_AGAIN)).cached
    assert provider.calls == 2


async def test_an_updated_agent_does_not_serve_its_old_answers_by_meaning(
    client: ResonantGenesis,
) -> None:
    agent = await client.agents.create(name="Support Bot", cache_config=SEMANTIC)
    await ask(client, agent.id, RESET)
    await client.agents.update(agent.id, system_prompt="Answer in French.")
    assert not (await ask(client, agent.id, RESET_AGAIN)).cached


async def test_response_cache_similarity_threshold_turns_it_on(client: ResonantGenesis) -> None:
    config = {"response_cache": {"enabled": True, "ttl": 86400, "similarity_threshold": 0.95}}
    agent = await client.agents.create(name="FAQ Bot", cache_config=config)
    await ask(client, agent.id, RESET)
    answer = await ask(client, agent.id, RESET_AGAIN)  # 0.99 on this model
    assert answer.match == "semantic"
    plain = await client.agents.create(name="Plain", cache_config={"response_cache": {}})
    await ask(client, plain.id, RESET)
    assert not (await ask(client, plain.id, RESET_AGAIN)).cached


async def test_an_openai_embedding_model_without_a_url_says_what_is_missing(
    client: ResonantGenesis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = {
        "semantic_cache": {
            "enabled": True,
            "similarity_threshold": 0.92,
            "embedding_model": "text-embedding-3-small",
        }
    }
    # Refused when it is configured, not at the first request (issue 13, item 5).
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(name="Support Bot", cache_config=config)
    assert raised.value.field == "cache_config.semantic_cache.embedding_model"
    assert "base_url" in raised.value.accepted
    assert "OPENAI_BASE_URL" in raised.value.accepted
    assert client.agents.list() == []


async def test_the_guides_semantic_snippet_over_an_openai_compatible_server() -> None:
    fake = FakeOpenAI()
    async with (
        serve(fake) as base_url,
        ResonantGenesis(api_key="sk-test", base_url=base_url) as client,
    ):
        agent = await client.agents.create(name="Support Bot", cache_config=OVER_HTTP)
        first = await ask(client, agent.id, RESET)
        second = await ask(client, agent.id, RESET_AGAIN)
        assert not first.cached
        assert second.match == "semantic"
        assert len(fake.requests) == 1  # one chat completion
        assert fake.embedding_requests  # the vectors came over HTTP
        assert fake.embedding_requests[0].body["model"] == "text-embedding-3-small"
        assert fake.embedding_requests[0].headers["authorization"] == "Bearer sk-test"


async def test_an_embedding_service_that_is_down_costs_misses_not_requests() -> None:
    fake = FakeOpenAI()
    async with (
        serve(fake) as base_url,
        ResonantGenesis(api_key="sk-test", base_url=base_url) as client,
    ):
        agent = await client.agents.create(name="Support Bot", cache_config=OVER_HTTP)
        first = await ask(client, agent.id, RESET)  # indexed while the service is up
        fake.embeddings_down = True
        second = await ask(client, agent.id, RESET_AGAIN)  # its lookup is a miss
        assert (first.cached, second.cached, len(fake.requests)) == (False, False, 2)
        repeat = await ask(client, agent.id, RESET_AGAIN)  # exact hits need no embedder
        assert (repeat.cached, repeat.match) == (True, "exact")
        stats = client.cache.get_semantic_stats()["response:text-embedding-3-small"]
        assert stats.embedding_failures == 2  # second's lookup, and its add: left unindexed
        assert stats.entries == 1

        fake.embeddings_down = False  # back: goals are indexed and found by meaning again
        await ask(client, agent.id, "How do I change my email address?")
        paraphrase = await ask(client, agent.id, "How can I change my email address?")
        assert paraphrase.match == "semantic"
        stats = client.cache.get_semantic_stats()["response:text-embedding-3-small"]
        assert stats.embedding_failures == 2


async def test_a_bad_embedder_is_refused() -> None:
    with pytest.raises(ConfigError, match="embedder"):
        ResonantGenesis(embedder=42)  # type: ignore[arg-type]


def test_the_error_bound_starts_strict() -> None:
    from rgruntime.agents.config import SemanticCacheConfig
    from rgruntime.semantic.error_bound import ErrorBoundSettings

    config = SemanticCacheConfig()
    assert (config.similarity_threshold, config.max_error_rate) == (None, None)
    assert ErrorBoundSettings().prior is None  # nothing served by meaning before outcomes


# -- the error-bound mode (the default) ---------------------------------------------------------


async def test_the_default_mode_serves_a_close_paraphrase_under_the_bound(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(
        name="Support Bot", cache_config={"semantic_cache": {"enabled": True}}
    )
    await ask(client, agent.id, RESET)
    await proven(client)
    second = await ask(client, agent.id, RESET_AGAIN)
    assert (second.cached, second.match, provider.calls) == (True, "semantic", 1)
    bounds = client.cache.get_semantic_stats()["response:minilm"].error_bound
    stats = bounds["0.02"]
    assert (stats.candidates, stats.served + stats.verified) == (1, 1)


async def test_an_unproven_candidate_is_verified_by_the_judge_and_learned(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def judge(query: str, cached: str, fresh: str) -> bool:
        seen.append((query, cached, fresh))
        return False

    # A cold index (no judged outcome yet) serves nothing by similarity: every candidate is
    # verified (the pair is not the same question by rule).
    config = {"semantic_cache": {"enabled": True, "max_error_rate": 0.01, "judge": judge}}
    agent = await client.agents.create(name="Support Bot", cache_config=config)
    first = await ask(client, agent.id, RESET)
    second = await ask(client, agent.id, RESET_AGAIN)
    assert (second.cached, provider.calls) == (False, 2)
    assert seen == [(RESET_AGAIN, first.output, second.output)]
    # A custom judge teaches a policy of its own, named after it.
    bounds = client.cache.get_semantic_stats()["response:minilm"].error_bound
    assert list(bounds) == [f"0.01 judge={judge.__qualname__}"]
    stats = bounds[f"0.01 judge={judge.__qualname__}"]
    assert (stats.verified, stats.judged, stats.judged_wrong, stats.served) == (1, 1, 1, 0)
    assert stats.exploration_rate == 1.0


@pytest.mark.parametrize(
    ("verdict", "learned"),
    [
        (RuntimeError("judge service down"), False),
        ("yes", False),  # neither True nor False
        (None, False),
        (np.True_, True),  # numpy's booleans are booleans
        (np.False_, True),
    ],
)
async def test_a_failing_judge_never_fails_the_answered_request(
    client: ResonantGenesis, provider: SimulatedProvider, verdict: object, learned: bool
) -> None:
    async def judge(query: str, cached: str, fresh: str) -> object:
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    config = {"semantic_cache": {"enabled": True, "max_error_rate": 0.01, "judge": judge}}
    agent = await client.agents.create(name="Support Bot", cache_config=config)
    await ask(client, agent.id, RESET)
    second = await ask(client, agent.id, RESET_AGAIN)  # verified: a cold index serves nothing
    assert (second.cached, second.output, provider.calls) == (False, second.output, 2)
    assert second.output
    stats = client.cache.get_semantic_stats()["response:minilm"].error_bound
    (policy,) = stats.values()
    assert (policy.verified, policy.judged, policy.judge_failures) == (
        (1, 1, 0) if learned else (1, 0, 1)
    )
    # The fresh answer was stored: the same goal again is an exact hit.
    again = await ask(client, agent.id, RESET_AGAIN)
    assert (again.cached, again.match) == (True, "exact")


async def test_the_model_judge_is_counted_in_usage_and_cost(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    config = {"semantic_cache": {"enabled": True, "max_error_rate": 0.01, "judge": "model"}}
    agent = await client.agents.create(name="Support Bot", cache_config=config)
    await ask(client, agent.id, RESET)
    plain = await ask(client, agent.id, RESET_AGAIN)  # verified: a cold index serves nothing
    assert provider.calls == 3  # two answers and one yes / no question
    # The model judge's policy is the model's own.
    bounds = client.cache.get_semantic_stats()["response:minilm"].error_bound
    assert list(bounds) == ["0.01 judge=model:sim-small"]
    stats = bounds["0.01 judge=model:sim-small"]
    assert stats.judged == 1
    assert plain.usage.total_tokens > 0
    assert plain.model_calls == 1  # the judge's call is counted in usage, not as an answer


async def test_a_lenient_judge_opens_serving_for_its_own_agents_only(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    async def lenient(query: str, cached: str, fresh: str) -> bool:
        return True  # every cached answer "would have been right"

    config = {"semantic_cache": {"enabled": True, "judge": lenient}}
    mine = await client.agents.create(name="Lenient", cache_config=config)
    await ask(client, mine.id, RESET)
    # Its probation: 100 verified candidates, each judged right (the fresh answer is removed
    # each time, so that the paraphrase is a candidate again, not an exact hit).
    for _ in range(100):
        assert not (await ask(client, mine.id, RESET_AGAIN)).cached
        assert await client.cache.invalidate(agent_id=mine.id, key=RESET_AGAIN) >= 1
    assert (await ask(client, mine.id, RESET_AGAIN)).match == "semantic"
    # Another agent given the same judge is served at once: its evidence is that judge's.
    also_mine = await client.agents.create(name="Lenient too", cache_config=config)
    await ask(client, also_mine.id, RESET)
    assert (await ask(client, also_mine.id, RESET_AGAIN)).match == "semantic"
    # Agents with the default judge, or with the model judge, are on probation of their own.
    for judge in ("answer", "model"):
        strict = {"semantic_cache": {"enabled": True, "judge": judge}}
        agent = await client.agents.create(name=f"Judged by {judge}", cache_config=strict)
        await ask(client, agent.id, RESET)
        # Verified, not served by meaning (its model call may hit the model layer: same model,
        # same prompt as the lenient agents' calls).
        assert (await ask(client, agent.id, RESET_AGAIN)).layer != "response"
    bounds = client.cache.get_semantic_stats()["response:minilm"].error_bound
    assert list(bounds) == [
        "0.02",  # the default judge's key, as before judges were kept apart
        "0.02 judge=model:sim-small",
        f"0.02 judge={lenient.__qualname__}",
    ]
    assert (bounds["0.02"].served, bounds["0.02"].verified, bounds["0.02"].judged) == (0, 1, 1)
    lenients = bounds[f"0.02 judge={lenient.__qualname__}"]
    assert (lenients.served, lenients.judged, lenients.judged_wrong) == (2, 100, 0)
    assert (
        bounds["0.02 judge=model:sim-small"].served,
        bounds["0.02 judge=model:sim-small"].judged,
    ) == (0, 1)


def plain_judge(query: str, cached: str, fresh: str) -> bool:
    return True


async def right_judge(query: str, cached: str, fresh: str) -> bool:
    return True


async def two_argument_judge(cached: str, fresh: str) -> bool:
    return True


BAD_SETTINGS: list[tuple[dict[str, Any], str, str]] = [
    ({"max_error_rate": 0}, "semantic_cache.max_error_rate", "above 0"),
    ({"max_error_rate": True}, "semantic_cache.max_error_rate", "above 0"),
    ({"judge": 42}, "semantic_cache.judge", "async function"),
    ({"judge": "models"}, "semantic_cache.judge", "async function"),
    ({"judge": None}, "semantic_cache.judge", "async function"),
    # A plain function would fail a request once its fresh answer was made: refused here.
    ({"judge": plain_judge}, "semantic_cache.judge", "async def"),
    # Nor a plain callable returning an awaitable: whether it does is not known here.
    ({"judge": lambda q, c, f: right_judge(q, f, c)}, "semantic_cache.judge", "async def"),
    ({"judge": two_argument_judge}, "semantic_cache.judge", "fresh_answer"),
    (
        {"max_error_rate": 0.02, "similarity_threshold": 0.9},
        "semantic_cache.max_error_rate",
        "one mode",
    ),
    # The static mode judges nothing: a judge there would be silently unused.
    ({"similarity_threshold": 0.9, "judge": "model"}, "semantic_cache.judge", "error-bound mode"),
    ({"similarity_threshold": 0.9, "judge": right_judge}, "semantic_cache.judge", "error-bound"),
]


@pytest.mark.parametrize(("options", "field", "accepted"), BAD_SETTINGS)
async def test_bad_error_bound_settings_are_refused(
    client: ResonantGenesis, options: dict[str, Any], field: str, accepted: str
) -> None:
    with pytest.raises(ConfigError, match=accepted) as raised:
        await client.agents.create(
            name="Bot", cache_config={"semantic_cache": {"enabled": True, **options}}
        )
    assert raised.value.field == f"cache_config.{field}"
    assert f"{field}: {describe_value(raised.value.value)} is not accepted" in str(raised.value)
    assert client.agents.list() == []  # nothing was created


@pytest.mark.parametrize(("options", "field", "accepted"), BAD_SETTINGS)
def test_bad_settings_are_refused_in_a_config_built_directly(
    options: dict[str, Any], field: str, accepted: str
) -> None:
    # Not only through the guide's mapping: the config classes check their own fields.
    with pytest.raises(ConfigError, match=accepted) as raised:
        SemanticCacheConfig(enabled=True, **options)
    assert raised.value.field == field


async def test_a_threshold_in_response_cache_and_an_error_bound_are_refused_together(
    client: ResonantGenesis,
) -> None:
    from rgruntime.agents.config import AgentCacheConfig, ResponseCacheConfig

    both = {
        "response_cache": {"similarity_threshold": 0.9},
        "semantic_cache": {"enabled": True, "max_error_rate": 0.05},
    }
    with pytest.raises(ConfigError, match="one mode") as raised:
        await client.agents.create(name="Bot", cache_config=both)
    assert raised.value.field == "cache_config.semantic_cache.max_error_rate"
    assert "response_cache.similarity_threshold" in str(raised.value)
    assert client.agents.list() == []
    with pytest.raises(ConfigError, match="one mode"):
        AgentCacheConfig(
            response_cache=ResponseCacheConfig(similarity_threshold=0.9),
            semantic_cache=SemanticCacheConfig(enabled=True, max_error_rate=0.05),
        )
    judged = {"response_cache": {"similarity_threshold": 0.9}, "semantic_cache": {"judge": "model"}}
    with pytest.raises(ConfigError, match="error-bound mode") as raised:
        await client.agents.create(name="Bot", cache_config=judged)
    assert raised.value.field == "cache_config.semantic_cache.judge"
    # Either alone is taken.
    for alone in (
        {"response_cache": both["response_cache"]},
        {"semantic_cache": both["semantic_cache"]},
    ):
        await client.agents.create(name="Bot", cache_config=alone)


async def test_the_accepted_judges_are_taken(client: ResonantGenesis) -> None:
    class Judge:
        async def __call__(self, query: str, cached: str, fresh: str) -> bool:
            return True

        async def method(self, query: str, cached: str, fresh: str) -> bool:
            return True

    async def judge(query: str, cached: str, fresh: str, *, strict: bool = False) -> bool:
        return True

    instance = Judge()
    for accepted in ("answer", "model", judge, instance, instance.method, partial(judge)):
        config = {"semantic_cache": {"enabled": True, "judge": accepted}}
        agent = await client.agents.create(name="Bot", cache_config=config)
        assert agent.cache_config.semantic_cache.judge is accepted
