"""The caching guide's snippets, unchanged (no ``await``), through the blocking client.

Both ways to open one (``rgruntime.connect`` and ``ResonantGenesis.blocking``) on both event
loops of the portal. These tests are synchronous: the runtime lives in the portal's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rgruntime
from rgruntime import (
    BlockingClient,
    ConfigError,
    Event,
    EventBus,
    InvalidArgumentError,
    ResonantGenesis,
    RunContext,
    SessionNotFoundError,
)
from rgruntime.providers import SimulatedProvider
from rgruntime.stores import StoreUnavailableError
from tests.servers import free_port

PORTAL_BACKENDS = ("asyncio", "trio")
OPENERS: dict[str, Callable[..., BlockingClient]] = {
    "connect": rgruntime.connect,
    "ResonantGenesis.blocking": ResonantGenesis.blocking,
}


@pytest.fixture(params=PORTAL_BACKENDS)
def portal_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(OPENERS))
def open_blocking(request: pytest.FixtureRequest, portal_backend: str) -> Callable[..., Any]:
    opener = OPENERS[request.param]

    def open_client(*args: Any, **kwargs: Any) -> BlockingClient:
        return opener(*args, backend=portal_backend, **kwargs)

    return open_client


@pytest.fixture
def threads_before() -> Iterator[int]:
    before = set(threading.enumerate())
    yield len(before)
    # Threads that end as the client closes (its loop's, the loop's worker threads) may still be
    # finishing when close() returns: counting them at that instant failed once in two full runs
    # under load. What must not happen is a thread that stays: each new one must end.
    left = [thread for thread in threading.enumerate() if thread not in before]
    for thread in left:
        thread.join(timeout=10)
    running = [thread.name for thread in left if thread.is_alive()]
    assert not running, f"the blocking client left threads running: {running}"


def test_the_guide_runs_unchanged(
    open_blocking: Callable[..., BlockingClient], threads_before: int
) -> None:
    provider = SimulatedProvider(latency=0)
    client = open_blocking(
        api_key="your_key",
        cache_config={
            "enabled": True,
            "default_ttl": 3600,  # 1 hour
            "max_size": "100MB",
            "strategy": "lru",
        },
        provider=provider,
    )
    assert threading.active_count() == threads_before + 1
    try:
        agent = client.agents.create(
            name="Research Agent",
            cache_config={
                "enabled": True,
                "response_ttl": 3600,
                "tool_cache": True,
                "memory_cache": True,
            },
            agent_id="agent_123",
        )
        assert agent.cache_config.response_ttl == 3600

        # Disable cache for specific request
        result = client.sessions.execute(
            agent_id="agent_123", goal="Get current weather", cache=False
        )
        assert result.cached is False
        result = client.sessions.execute(
            agent_id="agent_123", goal="Get current weather", cache=False
        )
        assert (result.cached, provider.calls) == (False, 2)

        # Custom TTL
        result = client.sessions.execute(
            agent_id="agent_123",
            goal="Analyze document",
            cache_ttl=7200,  # 2 hours
        )
        repeat = client.sessions.execute(agent_id="agent_123", goal="Analyze document")
        assert (repeat.cached, repeat.layer, repeat.match) == (True, "response", "exact")
        assert repeat.tokens_saved == result.usage.total_tokens > 0
        assert provider.calls == 3

        faq = client.agents.create(
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
        assert faq.cache_config.response_cache.max_entries == 10000

        # Configure session caching
        session = client.sessions.create(
            agent_id="agent_123",
            cache_config={"state_cache": True, "context_cache": True, "history_limit": 50},
        )
        client.sessions.execute(agent_id="agent_123", goal="Hello", session_id=session.id)
        # Resume session from cache
        session = client.sessions.resume(session_id=session.id, use_cache=True)
        assert next(message.content for message in session.history) == "Hello"

        # Tag cache entries for grouped invalidation
        result = client.sessions.execute(
            agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
        )
        # Invalidate by tag: the answer and the model output written for it
        assert client.cache.invalidate(tags=["products"]) == 2

        # Invalidate specific cache entry
        assert client.cache.invalidate(agent_id="agent_123", key="Analyze document") == 2
        # Invalidate all agent cache (its session and what its runs still had cached; the
        # cache=False answers were never stored)
        assert client.cache.invalidate(agent_id="agent_123") == 3
        # Invalidate by pattern (keys of the response layer start with response:<agent id>:)
        assert client.cache.invalidate(pattern="weather_*") == 0

        # Get cache statistics
        stats = client.cache.get_stats()
        assert stats.hit_rate + stats.miss_rate == pytest.approx(100.0)

        # Track token savings from caching
        savings = client.cache.get_savings(period="30d")
        assert savings.cached_responses == 1
        assert savings.tokens_saved == repeat.tokens_saved
    finally:
        client.close()


def test_context_manager_closes_the_runtime_and_its_thread(
    portal_backend: str, threads_before: int
) -> None:
    with rgruntime.connect(backend=portal_backend) as client:
        agent = client.agents.create(name="FAQ Bot")
        assert client.sessions.execute(agent_id=agent.id, goal="Hi").output
        assert threading.active_count() == threads_before + 1
    assert threading.active_count() == threads_before
    with pytest.raises(RuntimeError):
        # The portal is gone with its thread.
        client.sessions.execute(agent_id=agent.id, goal="Hi")
    client.close()  # closing again is harmless


def test_errors_reach_the_caller_and_the_client_stays_usable(
    portal_backend: str, threads_before: int
) -> None:
    with rgruntime.connect(backend=portal_backend) as client:
        with pytest.raises(SessionNotFoundError, match="sess_missing"):
            client.sessions.resume(session_id="sess_missing")
        with pytest.raises(ConfigError, match=r"cache_config\.colour"):
            client.agents.create(name="Bot", cache_config={"colour": "blue"})
        agent = client.agents.create(name="Bot")
        assert client.sessions.execute(agent_id=agent.id, goal="Still there?").output


def test_an_unavailable_backend_fails_without_leaving_a_thread(
    portal_backend: str, threads_before: int
) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StoreUnavailableError, match="open failed"):
        rgruntime.connect(
            api_key="your_key",
            cache_backend={"type": "redis", "url": url, "prefix": "rg:", "timeout": 0.5},
            backend=portal_backend,
        )


def test_a_failing_open_leaves_no_thread(portal_backend: str, threads_before: int) -> None:
    with pytest.raises(ConfigError, match=r"cache_config\.strategy"):
        rgruntime.connect(cache_config={"strategy": "fifo"}, backend=portal_backend)


def test_runners_and_tools_run_on_the_portal_loop(portal_backend: str, threads_before: int) -> None:
    provider = SimulatedProvider(latency=0, tool_script={"web_search": {"query": "hours"}})
    with rgruntime.connect(provider=provider, backend=portal_backend) as client:
        searched: list[str] = []

        async def web_search(query: str) -> str:
            searched.append(query)
            return "9 to 5"

        async def runner(context: RunContext) -> str:
            return f"From the framework: {(await context.complete()).text}"

        client.tools.register(web_search)
        searcher = client.agents.create(name="Searcher", tools=["web_search"])
        framework = client.agents.create(name="Framework", runner=runner)
        assert client.sessions.execute(agent_id=searcher.id, goal="Hours?").output
        answer = client.sessions.execute(agent_id=framework.id, goal="Hours?")
        assert answer.output.startswith("From the framework: ")
        assert (searched, provider.calls) == (["hours"], 3)


def test_the_guides_event_based_invalidation(portal_backend: str, threads_before: int) -> None:
    provider = SimulatedProvider(latency=0)
    with rgruntime.connect(provider=provider, backend=portal_backend) as client:
        client.agents.create(name="Catalog Bot", agent_id="agent_123")

        # Invalidate on events (the guide's handler, unchanged: it awaits the blocking client)
        @client.events.on("data.updated")
        async def invalidate_cache(event: Event) -> None:
            await client.cache.invalidate(tags=[event.data_type])

        first = client.sessions.execute(
            agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
        )
        hit = client.sessions.execute(agent_id="agent_123", goal="Get product info")
        assert (first.cached, hit.cached, hit.layer) == (False, True, "response")

        assert client.events.emit("data.updated", data_type="products") == 1
        stats = client.events.stats()
        assert (stats.failures, stats.delivered) == (0, 1)
        assert client.cache.get(first.cache_key) is None
        again = client.sessions.execute(agent_id="agent_123", goal="Get product info")
        assert again.layer != "response"  # a miss


def test_on_the_loop_the_namespaces_are_the_async_clients(
    portal_backend: str, threads_before: int
) -> None:
    with rgruntime.connect(provider=SimulatedProvider(latency=0), backend=portal_backend) as client:
        agent = client.agents.create(name="Bot")
        seen: list[Any] = []

        async def runner(context: RunContext) -> str:
            # On the loop's thread: coroutines to await, plain results of plain methods.
            stats = client.cache.get_stats()
            answer = await client.sessions.execute(agent_id=agent.id, goal="inner")
            seen.append((stats.entry_count >= 0, answer.output))
            return "outer done"

        outer = client.agents.create(name="Outer", runner=runner)
        assert client.sessions.execute(agent_id=outer.id, goal="outer").output == "outer done"
        assert len(seen) == 1
        assert seen[0][0] is True
        assert seen[0][1]


def test_event_registration_runs_on_the_loop(
    portal_backend: str, threads_before: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered_on: list[int] = []
    handled_on: list[int] = []
    add_handler = EventBus.add_handler

    def recording(self: EventBus, event: str, handler: Any) -> None:
        registered_on.append(threading.get_ident())
        add_handler(self, event, handler)

    monkeypatch.setattr(EventBus, "add_handler", recording)
    with rgruntime.connect(backend=portal_backend) as client:

        @client.events.on("data.updated")
        async def handler(event: Event) -> None:
            handled_on.append(threading.get_ident())

        client.events.add_handler("data.updated", handler)
        with pytest.raises(InvalidArgumentError):
            client.events.on("")  # checked at once, as on the async client
        assert client.events.emit("data.updated") == 2
    assert handled_on[0] != threading.get_ident()
    assert registered_on == [handled_on[0]] * 2  # both registrations ran on the loop's thread
