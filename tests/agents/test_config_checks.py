"""Configuration is checked when it is given (issue 13, item 5): embedders that cannot run and
tools that are not registered fail at ``agents.create`` / ``agents.update`` /
``ResonantGenesis(...)`` with a :class:`ConfigError` naming the field, not at the first request;
nothing already stored changes."""

from __future__ import annotations

import pytest

from rgruntime import ConfigError, ResonantGenesis

pytestmark = pytest.mark.anyio

GUIDE_SEMANTIC = {
    "semantic_cache": {
        "enabled": True,
        "similarity_threshold": 0.92,
        "embedding_model": "text-embedding-3-small",
    }
}


@pytest.fixture
def no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.mark.usefixtures("no_openai_environment")
async def test_an_openai_embedder_without_a_url_is_refused_at_creation(
    client: ResonantGenesis,
) -> None:
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(name="Support Bot", cache_config=GUIDE_SEMANTIC)
    assert raised.value.field == "cache_config.semantic_cache.embedding_model"
    assert raised.value.value == "text-embedding-3-small"
    assert "base_url" in raised.value.accepted
    assert client.agents.list() == []

    agent = await client.agents.create(name="Support Bot")
    with pytest.raises(ConfigError, match=r"semantic_cache\.embedding_model"):
        await client.agents.update(agent.id, cache_config=GUIDE_SEMANTIC)
    assert client.agents.get(agent.id).version == 1


async def test_an_openai_embedder_with_the_environment_is_accepted(
    client: ResonantGenesis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    agent = await client.agents.create(name="Support Bot", cache_config=GUIDE_SEMANTIC)
    assert agent.cache_config.semantic_cache.embedding_model == "text-embedding-3-small"


async def test_an_unknown_embedder_is_refused_at_creation(client: ResonantGenesis) -> None:
    config = {"semantic_cache": {"enabled": True, "embedding_model": "word2vec-of-my-dreams"}}
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(name="Support Bot", cache_config=config)
    assert raised.value.field == "cache_config.semantic_cache.embedding_model"
    assert "minilm" in raised.value.accepted


@pytest.mark.usefixtures("no_openai_environment")
def test_the_clients_embedder_is_checked_when_the_client_is_made() -> None:
    with pytest.raises(ConfigError) as raised:
        ResonantGenesis(embedder="text-embedding-3-small")
    assert raised.value.field == "embedder"
    with pytest.raises(ConfigError, match="registered embedder"):
        ResonantGenesis(embedder="no-such-model")
    ResonantGenesis(embedder="text-embedding-3-small", base_url="http://x/v1", api_key="k")


async def test_tools_that_are_not_registered_are_refused_at_creation(
    client: ResonantGenesis,
) -> None:
    async def web_search(query: str) -> str:
        """Search the web."""
        return query

    client.tools.register(web_search)
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(
            name="Research Agent",
            tools=["web_search", "code_exec"],
            tool_cache_config={"code_exec": {"enabled": False}},
        )
    assert (raised.value.field, raised.value.value) == ("tools", "code_exec")
    assert "client.tools.register" in raised.value.accepted
    assert client.agents.list() == []

    agent = await client.agents.create(name="Research Agent", tools=["web_search"])
    with pytest.raises(ConfigError, match="code_exec"):
        await client.agents.update(agent.id, tools=["web_search", "code_exec"])
    assert client.agents.get(agent.id).tools == ("web_search",)
    # A tool_cache_config naming a tool the agent does not have is refused too.
    with pytest.raises(ConfigError) as raised:
        await client.agents.create(
            name="Typo", tools=["web_search"], tool_cache_config={"web_serch": {"ttl": 60}}
        )
    assert raised.value.field == "tool_cache_config.web_serch"
