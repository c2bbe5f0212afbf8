"""The caching guide's snippets, run as written with ``await`` added where a call does I/O."""

from __future__ import annotations

import math

import anyio
import pytest

import rgruntime
from rgruntime import ResonantGenesis, SessionNotFoundError
from rgruntime.providers import SimulatedProvider, Usage

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def test_global_configuration() -> None:
    async with ResonantGenesis(
        api_key="your_key",
        cache_config={
            "enabled": True,
            "default_ttl": 3600,  # 1 hour
            "max_size": "100MB",
            "strategy": "lru",
        },
    ) as client:
        config = client.runtime.config
        assert (config.enabled, config.default_ttl, config.strategy) == (True, 3600, "lru")
        assert config.max_size == rgruntime.parse_size("100MB")
        # The layers share the 100 MB budget.
        assert sum(layer.max_size for layer in config.layers.values()) <= config.max_size

        agent = await client.agents.create(name="FAQ Bot")
        first = await client.sessions.execute(agent_id=agent.id, goal="What are your hours?")
        second = await client.sessions.execute(agent_id=agent.id, goal="What are your hours?")
    assert (first.cached, second.cached, second.output) == (False, True, first.output)


async def test_per_request_cache_false_calls_the_model_every_time_and_stores_nothing(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    await client.agents.create(name="Weather", agent_id="agent_123")
    outputs = []
    for _ in range(2):
        # Disable cache for specific request
        result = await client.sessions.execute(
            agent_id="agent_123", goal="Get current weather", cache=False
        )
        assert (result.cached, result.layer, result.cache_key) == (False, None, None)
        outputs.append(result.output)
    assert provider.calls == 2
    assert outputs[0] == outputs[1]
    stats = client.cache.get_stats()
    assert stats.layers["response"].entries == 0
    assert stats.layers["model"].entries == 0
    # A later cached request finds nothing stored by them.
    cached = await client.sessions.execute(agent_id="agent_123", goal="Get current weather")
    assert (cached.cached, provider.calls) == (False, 3)


async def test_per_request_cache_ttl_keeps_the_answer_two_hours(client: ResonantGenesis) -> None:
    await client.agents.create(name="Reader", agent_id="agent_123")
    # Custom TTL
    result = await client.sessions.execute(
        agent_id="agent_123",
        goal="Analyze document",
        cache_ttl=7200,  # 2 hours
    )
    assert result.cached is False
    # Past the response layer's default hour, before the two hours are up: still cached.
    await anyio.sleep(7199)
    assert await client.cache.get(result.cache_key) is not None
    await anyio.sleep(2)
    assert await client.cache.get(result.cache_key) is None


async def test_agent_level_configuration(client: ResonantGenesis) -> None:
    # Configure agent caching
    agent = await client.agents.create(
        name="Research Agent",
        cache_config={
            "enabled": True,
            "response_ttl": 3600,
            "tool_cache": True,
            "memory_cache": True,
        },
    )
    assert agent.name == "Research Agent"
    assert agent.cache_config.response_ttl == 3600
    assert agent.cache_config.tool_cache
    assert agent.cache_config.memory_cache
    assert agent.cache_config.caches_responses


async def test_configure_response_cache(provider: SimulatedProvider) -> None:
    # A similarity_threshold turns semantic matching on. The hashing embedder embeds on the
    # loop: the local model's worker thread would let the autojump clock leap to the answer's
    # deadline while it runs (semantic matching on the real model: test_semantic_responses.py).
    async with ResonantGenesis(api_key="your_key", provider=provider, embedder="hashing") as client:
        await _configure_response_cache(client)


async def _configure_response_cache(client: ResonantGenesis) -> None:
    # Enable response caching
    agent = await client.agents.create(
        name="FAQ Bot",
        cache_config={
            "response_cache": {
                "enabled": True,
                "ttl": 86400,  # 24 hours
                "max_entries": 10000,
                "similarity_threshold": 0.95,
            }
        },
    )
    response_cache = agent.cache_config.response_cache
    assert (response_cache.enabled, response_cache.ttl) == (True, 86400)
    assert (response_cache.max_entries, response_cache.similarity_threshold) == (10000, 0.95)
    result = await client.sessions.execute(agent_id=agent.id, goal="What is your return policy?")
    await anyio.sleep(86399)
    assert await client.cache.get(result.cache_key) is not None
    await anyio.sleep(2)
    assert await client.cache.get(result.cache_key) is None


async def test_second_identical_execute_is_an_exact_response_hit(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    agent = await client.agents.create(name="FAQ Bot")
    first = await client.sessions.execute(agent_id=agent.id, goal="How do I reset my password?")
    hit = await client.sessions.execute(agent_id=agent.id, goal="How do I reset my password?")

    assert provider.calls == 1
    assert (first.cached, first.model_calls) == (False, 1)
    assert first.usage.total_tokens > 0
    assert first.cost > 0
    assert (hit.cached, hit.layer, hit.match) == (True, "response", "exact")
    assert (hit.output, hit.cache_key, hit.finish_reason) == (
        first.output,
        first.cache_key,
        first.finish_reason,
    )
    assert (hit.usage, hit.cost, hit.model_calls) == (Usage(), 0.0, 0)
    assert hit.tokens_saved == first.usage.total_tokens > 0
    assert hit.cost_saved == pytest.approx(first.cost)
    assert hit.cost_saved > 0


async def test_session_caching_and_resume(client: ResonantGenesis) -> None:
    await client.agents.create(name="Assistant", agent_id="agent_123")
    # Configure session caching
    session = await client.sessions.create(
        agent_id="agent_123",
        cache_config={"state_cache": True, "context_cache": True, "history_limit": 50},
    )
    goals = ["Hello", "What did I just say?", "Summarize our talk"]
    outputs = [
        (await client.sessions.execute("agent_123", goal, session_id=session.id)).output
        for goal in goals
    ]
    # Resume session from cache
    session = await client.sessions.resume(session_id=session.id, use_cache=True)
    assert session.turns == 3
    expected = [text for pair in zip(goals, outputs, strict=True) for text in pair]
    assert [message.content for message in session.history] == expected
    assert [message.role for message in session.history] == ["user", "assistant"] * 3

    await client.sessions.delete(session.id)
    with pytest.raises(SessionNotFoundError):
        await client.sessions.resume(session_id=session.id, use_cache=True)


async def test_token_savings_report(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot")
    for _ in range(3):
        await client.sessions.execute(agent_id=agent.id, goal="What is your return policy?")
    # Track token savings from caching
    savings = client.cache.get_savings(period="30d")
    lines = [
        f"Cached responses: {savings.cached_responses}",
        f"Tokens saved: {savings.tokens_saved}",
        f"Cost saved: ${savings.cost_saved}",
    ]
    assert lines[0] == "Cached responses: 2"
    assert savings.tokens_saved > 0
    assert savings.cost_saved > 0


async def test_cache_statistics_report(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot")
    for _ in range(2):
        await client.sessions.execute(agent_id=agent.id, goal="What are your business hours?")
    # Get cache statistics
    stats = client.cache.get_stats()
    report = [
        f"Hit rate: {stats.hit_rate}%",
        f"Miss rate: {stats.miss_rate}%",
        f"Total entries: {stats.entry_count}",
        f"Memory usage: {stats.memory_usage}",
        f"Evictions: {stats.eviction_count}",
    ]
    assert len(report) == 5
    assert math.isclose(stats.hit_rate + stats.miss_rate, 100.0)
    # One answer and one model output are cached.
    assert stats.entry_count == 2
    assert stats.eviction_count == 0


async def test_warm_cache_on_startup(client: ResonantGenesis, provider: SimulatedProvider) -> None:
    await client.agents.create(name="Support", agent_id="support_agent")

    # Warm cache with common queries
    async def warm_cache() -> None:
        common_queries = [
            "What are your business hours?",
            "How do I reset my password?",
            "What is your return policy?",
        ]

        for query in common_queries:
            await client.sessions.execute(
                agent_id="support_agent",
                goal=query,
                cache_ttl=86400,  # 24 hours
            )

    await warm_cache()
    assert provider.calls == 3
    result = await client.sessions.execute("support_agent", "How do I reset my password?")
    assert (result.cached, provider.calls) == (True, 3)
