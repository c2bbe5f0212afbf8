"""``client.cache``: entries, invalidation, statistics, backends, and a client that is not open."""

from __future__ import annotations

from typing import Any

import pytest

from rgruntime import ConfigError, InvalidArgumentError, ResonantGenesis, RuntimeClosedError
from rgruntime.agents import CachedResponse
from rgruntime.providers import CompletionRequest, Message, SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

NAMESPACES_THAT_NEED_THE_RUNTIME = ("sessions", "cache", "models")


async def test_get_and_delete_an_answer(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot")
    result = await client.sessions.execute(agent_id=agent.id, goal="Hi")
    cached = await client.cache.get(result.cache_key)
    assert isinstance(cached, CachedResponse)
    assert (cached.output, cached.usage, cached.model) == (result.output, result.usage, "sim-small")
    assert await client.cache.get("response:nothing", default="absent") == "absent"

    assert await client.cache.delete(result.cache_key) is True
    assert await client.cache.delete(result.cache_key) is False
    assert await client.cache.get(result.cache_key) is None
    assert (await client.sessions.execute(agent_id=agent.id, goal="Hi")).layer != "response"


async def test_get_and_delete_in_another_layer(client: ResonantGenesis) -> None:
    session = await client.sessions.create((await client.agents.create(name="Bot")).id)
    key = f"session:{session.id}"
    assert (await client.cache.get(key, layer="session")).id == session.id
    assert await client.cache.delete(key, layer="session") is True


async def test_invalidate_an_agent(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot", agent_id="agent_123")
    other = await client.agents.create(name="Other")
    answers = [await client.sessions.execute("agent_123", goal) for goal in ("A?", "B?")]
    await client.sessions.create("agent_123")
    kept = await client.sessions.execute(other.id, "A?")

    # Invalidate all agent cache: two answers, the model outputs written for them, the session,
    # and the other agent's answer that used one of those outputs (issue 13, item 1).
    assert await client.cache.invalidate(agent_id=agent.id) == 6
    assert all([await client.cache.get(answer.cache_key) is None for answer in answers])
    assert await client.cache.get(kept.cache_key) is None
    assert await client.cache.invalidate(agent_id=agent.id) == 0


async def test_invalidate_one_goal_of_an_agent_in_every_context(client: ResonantGenesis) -> None:
    await client.agents.create(name="Support Bot", agent_id="agent_123")
    other = await client.agents.create(name="Other")
    session = await client.sessions.create("agent_123")
    await client.sessions.execute("agent_123", "Hello", session_id=session.id)
    plain = await client.sessions.execute("agent_123", "specific_query")
    in_session = await client.sessions.execute("agent_123", "specific_query", session_id=session.id)
    kept = [
        await client.sessions.execute("agent_123", "another_query"),
        await client.sessions.execute(other.id, "specific_query"),
    ]
    assert plain.cache_key != in_session.cache_key

    # Invalidate specific cache entry: both answers, the two model outputs written for them, and
    # the other agent's answer that shared the first output.
    assert await client.cache.invalidate(agent_id="agent_123", key="specific_query") == 5
    assert await client.cache.get(plain.cache_key) is None
    assert await client.cache.get(in_session.cache_key) is None
    assert await client.cache.get(kept[0].cache_key) is not None
    assert await client.cache.get(kept[1].cache_key) is None
    # A full cache key is removed as it is.
    assert await client.cache.invalidate(agent_id="agent_123", key=kept[0].cache_key) == 1


async def test_invalidate_by_pattern(client: ResonantGenesis) -> None:
    await client.agents.create(name="Weather", agent_id="weather_bot")
    await client.agents.create(name="News", agent_id="news_bot")
    for agent_id in ("weather_bot", "news_bot"):
        await client.sessions.execute(agent_id, "Today?")
        await client.sessions.execute(agent_id, "Tomorrow?")
    await client.runtime.layer("tool").set("weather_paris", {"temp": 21})

    # Invalidate by pattern: the glob applies to keys, in every layer.
    assert await client.cache.invalidate(pattern="weather_*") == 1
    assert await client.cache.invalidate(pattern="response:weather_bot:*") == 2
    assert await client.cache.invalidate(pattern="response:*") == 2


async def test_invalidate_by_tags_counts_every_layer(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Catalog")
    await client.sessions.execute(agent.id, "Phones?", cache_tags=["products:phones"])
    await client.sessions.execute(agent.id, "Shoes?", cache_tags=["products:shoes"])
    await client.runtime.layer("tool").set("stock", 3, tags=["products"])
    # Two answers, the model outputs written for them, the tool result.
    assert await client.cache.invalidate(tags=["products"]) == 5
    assert await client.cache.invalidate(tags=["products"]) == 0


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"agent_id": "agent_123", "pattern": "x*"},
        {"agent_id": "agent_123", "tags": ["x"]},
        {"tags": "products"},
        {"pattern": ""},
    ],
)
async def test_invalidate_refuses_unclear_requests(
    client: ResonantGenesis, arguments: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.cache.invalidate(**arguments)


async def test_get_stats(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support Bot")
    for _ in range(3):
        await client.sessions.execute(agent_id=agent.id, goal="Hours?")
    await client.runtime.layer("response").cleanup()  # sizes are the actor's bookkeeping

    stats = client.cache.get_stats()
    response = stats.layers["response"]
    assert (response.hits, response.misses, response.entries) == (2, 1, 1)
    assert response.hit_rate == pytest.approx(200 / 3)
    assert response.miss_rate == pytest.approx(100 / 3)
    assert (stats.layers["model"].hits, stats.layers["model"].misses) == (0, 1)
    assert stats.entry_count == 2 == stats.entries
    assert stats.memory_usage == stats.size_bytes > 0
    assert stats.eviction_count == stats.evictions == 0
    assert set(stats.layers) >= {"response", "session", "model", "tool", "memory"}


async def test_get_savings_adds_up_what_the_hits_reported(client: ResonantGenesis) -> None:
    first = await client.agents.create(name="First")
    second = await client.agents.create(name="Second")
    results = [
        await client.sessions.execute(first.id, "Hours?"),  # model call
        await client.sessions.execute(first.id, "Hours?"),  # response hit
        await client.sessions.execute(first.id, "Hours?"),  # response hit
        await client.sessions.execute(second.id, "Hours?"),  # model hit
        await client.sessions.execute(second.id, "Refunds?"),  # model call
    ]
    assert [result.layer for result in results] == [None, "response", "response", "model", None]
    savings = client.cache.get_savings(period="30d")
    assert savings.cached_responses == 2
    assert savings.tokens_saved == sum(result.tokens_saved for result in results) > 0
    assert savings.cost_saved == pytest.approx(sum(result.cost_saved for result in results))
    assert savings.layers["model"].hits == 1
    assert savings.period == 30 * 86400
    assert client.cache.get_savings(period=3600).cached_responses == 2
    with pytest.raises(InvalidArgumentError, match="period"):
        client.cache.get_savings(period="a month")


@pytest.mark.parametrize("namespace", NAMESPACES_THAT_NEED_THE_RUNTIME)
async def test_namespaces_before_opening_explain_what_to_do(namespace: str) -> None:
    client = ResonantGenesis()
    with pytest.raises(RuntimeClosedError, match=r"async with ResonantGenesis\(\.\.\.\)"):
        getattr(client, namespace)


@pytest.mark.parametrize("namespace", NAMESPACES_THAT_NEED_THE_RUNTIME)
async def test_namespaces_after_closing_explain_what_to_do(namespace: str) -> None:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        getattr(client, namespace)
    with pytest.raises(RuntimeClosedError, match="not open"):
        getattr(client, namespace)


async def test_a_kept_model_gateway_fails_once_closed() -> None:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        models = client.models
    with pytest.raises(RuntimeClosedError):
        await models.complete(CompletionRequest("sim-small", [Message("user", "Hi")]))


@pytest.mark.parametrize(
    "cache_backend",
    [
        {"type": "redis", "url": "redis://localhost:6379", "db": 0, "prefix": "rg:"},
        {"type": "memcached", "servers": ["localhost:11211"], "prefix": "rg:"},
        {
            "type": "redis_cluster",
            "nodes": ["redis://node1:6379", "redis://node2:6379", "redis://node3:6379"],
            "read_from_replicas": True,
        },
    ],
)
def test_the_guides_backends_are_accepted_as_written(cache_backend: dict[str, Any]) -> None:
    # Nothing connects before the client opens: building it checks the settings only.
    client = ResonantGenesis(api_key="your_key", cache_backend=cache_backend)
    assert client.runtime.config.cache_backend is not None
    assert all(layer.remote for layer in client.runtime.config.layers.values())


def test_a_bad_backend_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        ResonantGenesis(cache_backend={"type": "cassandra"})
    assert raised.value.field == "cache_backend.type"
    with pytest.raises(ConfigError) as raised:
        ResonantGenesis(cache_backend={"type": "redis", "url": "http://x"})
    assert raised.value.field == "cache_backend.url"


async def test_the_memory_backend_works() -> None:
    provider = SimulatedProvider(latency=0)
    async with ResonantGenesis(cache_backend={"type": "memory"}, provider=provider) as client:
        agent = await client.agents.create(name="Bot")
        await client.sessions.execute(agent.id, "Hi")
        assert (await client.sessions.execute(agent.id, "Hi")).cached is True
    with pytest.raises(ConfigError, match=r"cache_backend\.url"):
        ResonantGenesis(cache_backend={"type": "memory", "url": "redis://x"})
    with pytest.raises(ConfigError, match="cache_backend"):
        ResonantGenesis(cache_backend="memory")  # type: ignore[arg-type]
