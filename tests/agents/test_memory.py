"""``client.memory``: the built-in store, user search functions, the memory cache, preloading,
auto-invalidation, dependencies of responses, and bad input.

Tests that go through the built-in store run on real clocks: its searches run in worker threads,
and an autojump clock would jump to the next cache deadline while a thread works. Tests of TTLs
and concurrency use a user search function (no thread) on virtual clocks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest

from rgruntime import (
    ConfigError,
    Event,
    InvalidArgumentError,
    MemoryResult,
    PreloadResult,
    ResonantGenesis,
    RuntimeClosedError,
)
from rgruntime.agents import AgentNotFoundError, RunContext
from rgruntime.agents.memory import memory_key, memory_tag
from rgruntime.providers import SimulatedProvider
from rgruntime.runtime.dependencies import recording

pytestmark = pytest.mark.anyio

GUIDE_MEMORY_CONFIG = {"cache": {"enabled": True, "ttl": 900, "max_entries": 1000, "preload": True}}


@pytest.fixture
async def mem_client() -> AsyncIterator[ResonantGenesis]:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0), embedder="hashing") as client:
        yield client


class CountingSearch:
    """A user's memory search: answers from a list, counts calls and concurrent calls."""

    def __init__(self, memories: Sequence[str] = (), delay: float = 0.0) -> None:
        self.memories = list(memories)
        self.delay = delay
        self.calls: list[str] = []
        self.running = 0
        self.max_running = 0
        self.fail_on: set[str] = set()

    async def __call__(self, agent_id: str, query: str, k: int) -> list[dict[str, Any]]:
        self.calls.append(query)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await anyio.sleep(self.delay)
            if query in self.fail_on:
                raise ConnectionError(f"store down for {query!r}")
            words = set(query.lower().split())
            scored = [
                (len(words & set(text.lower().split())) / max(1, len(words)), text)
                for text in self.memories
            ]
            scored.sort(reverse=True)
            return [
                {"id": f"m{index}", "text": text, "similarity": score, "metadata": {"k": k}}
                for index, (score, text) in enumerate(scored[:k])
            ]
        finally:
            self.running -= 1


def memory_stats(client: ResonantGenesis) -> tuple[int, int]:
    stats = client.cache.get_stats().layers["memory"]
    return stats.hits, stats.misses


# -- the built-in store ------------------------------------------------------------------------


async def test_add_search_delete(mem_client: ResonantGenesis, anyio_backend: str) -> None:
    client = mem_client
    agent = await client.agents.create(name="Knowledge Agent")
    refund = await client.memory.add(agent.id, "Refunds take five business days", {"src": "faq"})
    await client.memory.add(agent.id, "Our office is in Paris")
    await client.memory.add(agent.id, "Support answers emails within a day")

    results = await client.memory.search(agent.id, "how many days do refunds take", k=2)
    assert len(results) == 2
    assert results[0].id == refund
    assert results[0].text == "Refunds take five business days"
    assert results[0].metadata == {"src": "faq"}
    assert all(0 <= result.similarity <= 1 for result in results)
    assert results[0].similarity >= results[1].similarity
    assert client.memory.list(agent.id)[0].text.startswith("Refunds")
    assert client.memory.get(agent.id, refund).metadata == {"src": "faq"}  # type: ignore[union-attr]

    assert await client.memory.delete(agent.id, refund) is True
    assert await client.memory.delete(agent.id, refund) is False
    after = await client.memory.search(agent.id, "how many days do refunds take", k=5)
    assert refund not in [result.id for result in after]
    assert len(after) == 2


async def test_each_agent_searches_only_its_own_memories(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    one = await mem_client.agents.create(name="One")
    two = await mem_client.agents.create(name="Two")
    await mem_client.memory.add(one.id, "The launch code is blue")
    assert await mem_client.memory.search(two.id, "The launch code is blue") == []
    assert (await mem_client.memory.search(one.id, "The launch code is blue"))[0].similarity == (
        pytest.approx(1.0, abs=1e-5)
    )


async def test_the_default_model_finds_a_paraphrase(anyio_backend: str) -> None:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:  # all-MiniLM
        agent = await client.agents.create(name="Support")
        refund = await client.memory.add(agent.id, "Refunds are paid back within five days.")
        await client.memory.add(agent.id, "The headquarters are located in Paris.")
        await client.memory.add(agent.id, "Passwords must be at least twelve characters long.")
        results = await client.memory.search(agent.id, "When will I get my money back?", k=3)
        assert results[0].id == refund
        assert results[0].similarity > results[1].similarity


# -- the memory cache --------------------------------------------------------------------------


async def test_the_guides_memory_caching_snippets(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    client = mem_client
    # Configure memory system caching
    agent = await client.agents.create(
        name="Knowledge Agent", agent_id="agent_123", memory_config=GUIDE_MEMORY_CONFIG
    )
    await client.memory.add(agent.id, "Company policies: remote work is allowed on Fridays")
    await client.memory.add(agent.id, "Product information: the X200 has a 6 inch screen")
    await client.memory.add(agent.id, "Pricing details: the X200 costs 300 euros")

    # Preload frequently accessed memories
    result = await client.memory.preload(
        agent_id="agent_123",
        queries=["company policies", "product information", "pricing details"],
    )
    assert isinstance(result, PreloadResult)
    assert list(result.loaded) == ["company policies", "product information", "pricing details"]
    assert result.ok
    assert result.loaded["pricing details"][0].text.startswith("Pricing details")

    # Hits: the preloaded lookups answer from the memory cache.
    hits, misses = memory_stats(client)
    found = await client.memory.search("agent_123", "pricing details")
    assert found[0].text.startswith("Pricing details")
    assert memory_stats(client) == (hits + 1, misses)

    # Invalidation: adding a memory (on_memory_update is on by default).
    await client.memory.add("agent_123", "Pricing details: the X300 costs 500 euros")
    assert memory_key("agent_123", "pricing details", 5) not in client.runtime.layer("memory")

    # A miss, which sees the new memory.
    found = await client.memory.search("agent_123", "pricing details")
    assert memory_stats(client)[1] == misses + 1
    assert "X300" in " ".join(result.text for result in found)


async def test_a_lookup_is_cached_per_query_and_k(anyio_backend: str) -> None:
    search = CountingSearch(["alpha beta", "beta gamma"])
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        first = await client.memory.search(agent.id, "beta", k=1)
        assert await client.memory.search(agent.id, "beta", k=1) == first
        await client.memory.search(agent.id, "beta", k=2)
        await client.memory.search(agent.id, "gamma", k=1)
        assert search.calls == ["beta", "beta", "gamma"]
        # The caller's list is its own: changing it changes nothing cached.
        first.clear()
        assert len(await client.memory.search(agent.id, "beta", k=1)) == 1


@pytest.mark.virtual_time
async def test_lookups_expire_after_the_configured_ttl(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"])
    async with ResonantGenesis(memory_search=search) as client:
        default = await client.agents.create(name="Default")  # the memory layer's 15 min
        short = await client.agents.create(name="Short", memory_config={"cache": {"ttl": "1m"}})
        for agent in (default, short):
            await client.memory.search(agent.id, "alpha")
        await anyio.sleep(61)
        for agent in (default, short):
            await client.memory.search(agent.id, "alpha")
        assert len(search.calls) == 3  # the short one ran again
        await anyio.sleep(900)
        await client.memory.search(default.id, "alpha")
        assert len(search.calls) == 4


async def test_max_entries_keeps_the_newest_lookups(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"])
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A", memory_config={"cache": {"max_entries": 2}})
        for query in ("one", "two", "three"):
            await client.memory.search(agent.id, query)
        layer = client.runtime.layer("memory")
        assert memory_key(agent.id, "one", 5) not in layer
        assert memory_key(agent.id, "three", 5) in layer
        assert memory_key(agent.id, "two", 5) in layer


@pytest.mark.virtual_time
async def test_max_entries_counts_only_lookups_still_cached(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"])
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(
            name="A", memory_config={"cache": {"max_entries": 2, "ttl": 60}}
        )
        layer = client.runtime.layer("memory")
        for query in ("one", "two"):
            await client.memory.search(agent.id, query)
        # "two" leaves, from the newer end: it must stop counting.
        assert await client.cache.delete(memory_key(agent.id, "two", 5), layer="memory")
        await client.memory.search(agent.id, "three")
        assert memory_key(agent.id, "one", 5) in layer  # two lookups stay cached, not one
        assert memory_key(agent.id, "three", 5) in layer
        # Expired ones stop counting too.
        await anyio.sleep(61)
        for query in ("four", "five"):
            await client.memory.search(agent.id, query)
        assert memory_key(agent.id, "four", 5) in layer
        assert memory_key(agent.id, "five", 5) in layer
        evicted: list[tuple[str, str]] = []
        client.events.add_handler(
            "cache.evicted", lambda event: evicted.append((event.key, event.reason))
        )
        await client.memory.search(agent.id, "six")  # the limit holds: the oldest goes
        assert memory_key(agent.id, "four", 5) not in layer
        assert memory_key(agent.id, "five", 5) in layer
        assert memory_key(agent.id, "six", 5) in layer
        await client.events.flush()
        assert evicted == [(memory_key(agent.id, "four", 5), "trimmed")]


@pytest.mark.virtual_time
async def test_a_search_that_joins_one_in_progress_is_a_miss_that_ran_nothing(
    anyio_backend: str,
) -> None:
    search = CountingSearch(["alpha"], delay=1)
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        seen: list[tuple[str, Any]] = []
        client.events.add_handler(
            "cache.*", lambda event: seen.append((event.name, event.data.get("joined")))
        )
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(client.memory.search, agent.id, "alpha")
        await client.memory.search(agent.id, "alpha")
        await client.events.flush()
        assert search.calls == ["alpha"]
        # One lookup ran; two searches waited for it (misses that ran nothing); one hit.
        assert sorted(seen) == [
            ("cache.hit", None),
            ("cache.miss", False),
            ("cache.miss", True),
            ("cache.miss", True),
        ]
        assert memory_stats(client) == (1, 3)  # as the layer counts them


@pytest.mark.parametrize(
    ("cache_config", "memory_config"),
    [
        ({"memory_cache": False}, None),
        ({"enabled": False}, None),
        (None, {"cache": {"enabled": False}}),
    ],
)
async def test_memory_caching_can_be_turned_off(
    anyio_backend: str, cache_config: Any, memory_config: Any
) -> None:
    search = CountingSearch(["alpha"])
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(
            name="A", cache_config=cache_config, memory_config=memory_config
        )
        await client.memory.search(agent.id, "alpha")
        await client.memory.search(agent.id, "alpha")
        assert search.calls == ["alpha", "alpha"]
        assert client.runtime.layer("memory").stats().entries == 0
        with pytest.raises(InvalidArgumentError, match="memory lookups are cached"):
            await client.memory.preload(agent.id, ["alpha"])


# -- user search functions -----------------------------------------------------------------------


async def test_a_search_function_per_agent_wins_over_the_clients(anyio_backend: str) -> None:
    shared = CountingSearch(["from the client"])
    own = CountingSearch(["from the agent"])
    async with ResonantGenesis(memory_search=shared) as client:
        plain = await client.agents.create(name="Plain")
        special = await client.agents.create(name="Special", memory_config={"search": own})
        assert (await client.memory.search(plain.id, "from"))[0].text == "from the client"
        result = (await client.memory.search(special.id, "from"))[0]
        assert result == MemoryResult(
            id="m0", text="from the agent", metadata={"k": 5}, similarity=1.0
        )
        assert (shared.calls, own.calls) == (["from"], ["from"])

        # Its memories live in the user's store: add and delete are refused, invalidate works.
        with pytest.raises(InvalidArgumentError, match=r"client.memory.invalidate"):
            await client.memory.add(special.id, "new")
        with pytest.raises(InvalidArgumentError, match="built-in store"):
            await client.memory.delete(special.id, "m0")
        assert await client.memory.invalidate(special.id) == 1
        await client.memory.search(special.id, "from")
        assert own.calls == ["from", "from"]


@pytest.mark.parametrize(
    ("returned", "field"),
    [
        ("just text", "memory_search result"),
        ([42], "memory_search result[0]"),
        ([{"id": "x"}], "memory_search result[0].text"),
        ([{"text": "t", "similarity": 1.5}], "memory_search result[0].similarity"),
        ([{"text": "t", "metadata": ["not", "a", "dict"]}], "memory_search result[0].metadata"),
    ],
)
async def test_a_bad_search_result_is_an_error_and_is_not_cached(
    anyio_backend: str, returned: Any, field: str
) -> None:
    calls = 0

    async def search(agent_id: str, query: str, k: int) -> Any:
        nonlocal calls
        calls += 1
        return returned

    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        with pytest.raises(InvalidArgumentError) as caught:
            await client.memory.search(agent.id, "q")
        assert caught.value.field == field
        with pytest.raises(InvalidArgumentError):
            await client.memory.search(agent.id, "q")
        assert calls == 2  # the error was not cached


# -- preloading ----------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_preloading_100_queries_never_runs_more_than_8_at_once(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"], delay=0.5)
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        queries = [f"query {number}" for number in range(100)]
        started = anyio.current_time()
        result = await client.memory.preload(agent_id=agent.id, queries=queries, concurrency=8)
        assert search.max_running == 8  # the limit was reached, never passed
        assert len(search.calls) == 100
        assert list(result.loaded) == queries
        # 100 lookups of 0.5 s, 8 at a time: 13 rounds.
        assert anyio.current_time() - started == pytest.approx(6.5, abs=0.01)
        assert all(
            memory_key(agent.id, query, 5) in client.runtime.layer("memory") for query in queries
        )


@pytest.mark.virtual_time
async def test_preload_reports_failures_and_what_was_cached(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"], delay=0.1)
    search.fail_on = {"broken"}
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        await client.memory.search(agent.id, "cached")
        result = await client.memory.preload(
            agent.id, ["fresh", "broken", "cached", "fresh"], concurrency=2
        )
        assert list(result.loaded) == ["fresh"]
        assert result.already_cached == ("cached",)
        assert list(result.failed) == ["broken"]
        assert isinstance(result.failed["broken"], ConnectionError)
        assert not result.ok
        assert memory_key(agent.id, "broken", 5) not in client.runtime.layer("memory")
        assert search.calls.count("fresh") == 1  # each query once


@pytest.mark.virtual_time
async def test_configured_queries_are_preloaded_on_creation_and_on_opening(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    search = CountingSearch(["alpha"])
    search.fail_on = {"down"}
    config = {"cache": {**GUIDE_MEMORY_CONFIG["cache"], "preload_queries": ["policies", "down"]}}
    client = ResonantGenesis(memory_search=search)
    before = await client.agents.create(name="Before", memory_config=config)
    async with client:
        assert sorted(search.calls) == ["down", "policies"]  # preloaded when the client opened
        preloaded: list[PreloadResult] = []
        client.events.add_handler("memory.preloaded", lambda event: preloaded.append(event.result))
        with caplog.at_level(logging.WARNING, logger="rgruntime.memory"):
            during = await client.agents.create(name="During", memory_config=config)
        assert "'down' failed" in caplog.text  # logged; the agent was created anyway
        assert client.agents.get(during.id) is during
        assert [result.agent_id for result in preloaded] == [during.id]
        assert list(preloaded[0].loaded) == ["policies"]
        layer = client.runtime.layer("memory")
        for agent in (before, during):
            assert memory_key(agent.id, "policies", 5) in layer
        # preload: False (the default) preloads nothing.
        await client.agents.create(
            name="Lazy", memory_config={"cache": {"preload_queries": ["policies"]}}
        )
        assert len(search.calls) == 4


@pytest.mark.virtual_time
async def test_a_cancelled_preload_leaves_nothing_running(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"], delay=10)
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A")
        with anyio.move_on_after(1):
            await client.memory.preload(agent.id, [f"q{number}" for number in range(20)])
        await anyio.sleep(1)  # the loads, which belong to the layer, end at their cancellation
        assert search.running == 0  # every lookup was cancelled with it
        assert client.runtime.layer("memory").statistics().loads_in_flight == 0
        assert client.runtime.layer("memory").stats().entries == 0
        search.delay = 0
        assert len(await client.memory.search(agent.id, "q1")) == 1  # and it still works


# -- changes, events and dependencies --------------------------------------------------------


async def test_memory_changes_invalidate_lookups_and_emit_events(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    client = mem_client
    agent = await client.agents.create(name="A")
    other = await client.agents.create(name="B")
    names: list[tuple[str, Any]] = []

    @client.events.on("memory.*")
    async def record(event: Event) -> None:
        names.append((event.name, event.data.get("removed")))

    memory_id = await client.memory.add(agent.id, "alpha")
    await client.memory.add(other.id, "alpha")
    await client.memory.search(agent.id, "alpha")
    await client.memory.search(other.id, "alpha")
    await client.memory.delete(agent.id, memory_id)
    layer = client.runtime.layer("memory")
    assert memory_key(agent.id, "alpha", 5) not in layer
    assert memory_key(other.id, "alpha", 5) in layer  # another agent's lookups stay
    assert names == [
        ("memory.invalidated", 0),
        ("memory.added", None),
        ("memory.invalidated", 0),
        ("memory.added", None),
        ("memory.invalidated", 1),
        ("memory.deleted", None),
    ]


async def test_without_on_memory_update_lookups_stay(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    agent = await mem_client.agents.create(
        name="A", cache_config={"auto_invalidate": {"on_memory_update": False}}
    )
    await mem_client.memory.add(agent.id, "alpha")
    before = await mem_client.memory.search(agent.id, "alpha")
    await mem_client.memory.add(agent.id, "alpha beta")
    assert await mem_client.memory.search(agent.id, "alpha") == before  # still the cached one


async def test_memory_hit_and_miss_events(mem_client: ResonantGenesis, anyio_backend: str) -> None:
    agent = await mem_client.agents.create(name="A")
    seen: list[tuple[str, str]] = []
    mem_client.events.add_handler("cache.*", lambda event: seen.append((event.name, event.layer)))
    await mem_client.memory.search(agent.id, "alpha")
    await mem_client.memory.search(agent.id, "alpha")
    await mem_client.events.flush()
    assert sorted(seen) == [("cache.hit", "memory"), ("cache.miss", "memory")]


async def test_a_cached_lookup_is_recorded_as_a_read(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    agent = await mem_client.agents.create(name="A")
    with recording(None) as reads:
        await mem_client.memory.search(agent.id, "alpha")  # a miss
        await mem_client.memory.search(agent.id, "alpha")  # a hit
    assert reads.nodes == {("memory", memory_key(agent.id, "alpha", 5))}


async def test_adding_a_memory_makes_the_next_identical_execution_a_miss(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    client = mem_client

    async def runner(context: RunContext) -> str:
        found = await client.memory.search(context.agent.id, context.goal, k=3)
        answer = await context.complete()
        return f"{answer.text} [memory: {'; '.join(result.text for result in found)}]"

    agent = await client.agents.create(name="Knowledge Agent", runner=runner)
    plain = await client.agents.create(name="No memory")
    await client.memory.add(agent.id, "refund policy: five days")

    first = await client.sessions.execute(agent.id, "refund policy")
    unrelated = await client.sessions.execute(plain.id, "refund policy")
    hit = await client.sessions.execute(agent.id, "refund policy")
    assert (hit.cached, hit.layer) == (True, "response")

    await client.memory.add(agent.id, "refund policy: now ten days")
    again = await client.sessions.execute(agent.id, "refund policy")
    assert again.layer != "response"  # a miss: the answer depended on the lookup
    assert "ten days" in again.output
    assert first.output != again.output
    # An answer that used no memory lookup stays cached.
    assert (await client.sessions.execute(plain.id, "refund policy")).layer == "response"
    assert await client.cache.get(unrelated.cache_key) is not None


async def test_deleting_an_agent_forgets_its_memories(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    agent = await mem_client.agents.create(name="A", agent_id="agent_gone")
    await mem_client.memory.add(agent.id, "alpha")
    await mem_client.memory.search(agent.id, "alpha")
    await mem_client.agents.delete(agent.id)
    assert mem_client.runtime.layer("memory").stats().entries == 0
    again = await mem_client.agents.create(name="A", agent_id="agent_gone")
    assert await mem_client.memory.search(again.id, "alpha") == []


# -- bad input ------------------------------------------------------------------------------------


async def test_bad_input_is_refused_and_nothing_stored_is_lost(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    client = mem_client
    agent = await client.agents.create(name="A")
    kept = await client.memory.add(agent.id, "alpha", {"n": 1})
    cached = await client.memory.search(agent.id, "alpha")

    bad_calls: list[tuple[Any, str, Any, str]] = [
        (client.memory.add(agent.id, ""), "text", "", "non-empty string"),
        (client.memory.add(agent.id, 42), "text", 42, "non-empty string"),  # type: ignore[arg-type]
        (client.memory.add(agent.id, "x", ["m"]), "metadata", ["m"], "dict"),  # type: ignore[arg-type]
        (client.memory.search(agent.id, "alpha", k=0), "k", 0, "from 1 to 1000"),
        (client.memory.search(agent.id, "   "), "query", "   ", "non-empty string"),
        (client.memory.delete(agent.id, 7), "memory_id", 7, "returned by add"),  # type: ignore[arg-type]
        (client.memory.preload(agent.id, "alpha"), "queries", "alpha", "not one string"),
        (client.memory.preload(agent.id, ["a"], concurrency=0), "concurrency", 0, "positive"),
        (client.memory.preload(agent.id, ["a", ""]), "queries", "", "non-empty string"),
    ]
    for call, field, value, accepted in bad_calls:
        with pytest.raises(InvalidArgumentError) as caught:
            await call
        assert (caught.value.field, caught.value.value) == (field, value)
        assert accepted in caught.value.accepted
        assert str(value) in str(caught.value) or repr(value) in str(caught.value)
    with pytest.raises(AgentNotFoundError):
        await client.memory.add("agent_unknown", "alpha")

    # Nothing stored was lost: the memory and the cached lookup are still there.
    assert [record.id for record in client.memory.list(agent.id)] == [kept]
    hits = memory_stats(client)[0]
    assert await client.memory.search(agent.id, "alpha") == cached
    assert memory_stats(client)[0] == hits + 1


@pytest.mark.parametrize(
    ("memory_config", "field", "accepted"),
    [
        ({"cache": {"ttl": -5}}, "memory_config.cache.ttl", "positive number of seconds"),
        ({"cache": {"enabled": "yes"}}, "memory_config.cache.enabled", "True or False"),
        ({"cache": {"max_entries": 0}}, "memory_config.cache.max_entries", "positive"),
        ({"cache": {"preload": 1}}, "memory_config.cache.preload", "True or False"),
        ({"cache": {"preload_queries": "a"}}, "memory_config.cache.preload_queries", "list"),
        ({"cache": {"size": 3}}, "memory_config.cache.size", "known setting"),
        ({"search": "not callable"}, "memory_config.search", "async function"),
        ({"cache": []}, "memory_config.cache", "dict"),
        ({"other": 1}, "memory_config.other", "known setting"),
    ],
)
async def test_bad_memory_config_names_field_value_and_accepted(
    anyio_backend: str, memory_config: Any, field: str, accepted: str
) -> None:
    search = CountingSearch()
    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="A", agent_id="agent_1")
        with pytest.raises(ConfigError) as caught:
            await client.agents.create(name="B", memory_config=memory_config)
        assert caught.value.field == field
        assert accepted in caught.value.accepted
        with pytest.raises(ConfigError):
            await client.agents.update(agent.id, memory_config=memory_config)
        # Nothing changed: the agent keeps its version and configuration.
        assert client.agents.get("agent_1") is agent
        assert [a.id for a in client.agents.list()] == ["agent_1"]


async def test_a_partial_memory_config_update_keeps_the_rest(anyio_backend: str) -> None:
    search = CountingSearch(["alpha"])
    async with ResonantGenesis(memory_search=CountingSearch()) as client:
        agent = await client.agents.create(
            name="A",
            memory_config={
                "search": search,
                "cache": {"ttl": 900, "max_entries": 10, "preload_queries": ["alpha"]},
            },
        )
        updated = await client.agents.update(agent.id, memory_config={"cache": {"ttl": 60}})
        assert updated.memory_config.search is search
        assert updated.memory_config.cache.ttl == 60
        assert updated.memory_config.cache.max_entries == 10
        assert updated.memory_config.cache.preload_queries == ("alpha",)
        # A MemoryConfig replaces it whole.
        from rgruntime.agents.config import MemoryConfig

        replaced = await client.agents.update(agent.id, memory_config=MemoryConfig())
        assert replaced.memory_config == MemoryConfig()
        assert replaced.memory_config.search is None


async def test_memory_search_must_be_callable() -> None:
    with pytest.raises(ConfigError) as caught:
        ResonantGenesis(memory_search="not a function")  # type: ignore[arg-type]
    assert caught.value.field == "memory_search"


async def test_memory_needs_an_open_client(anyio_backend: str) -> None:
    client = ResonantGenesis()
    with pytest.raises(RuntimeClosedError, match="not open"):
        _ = client.memory


async def test_memory_tag_is_a_child_of_the_agent_tag() -> None:
    assert memory_tag("agent_1") == "agent:agent_1:memory"


async def test_a_large_store_moves_to_an_hnswlib_graph(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    from rgruntime.semantic import HnswSettings

    mem_client.memory.index_settings = HnswSettings(exact_limit=16)
    agent = await mem_client.agents.create(name="A")
    ids = [
        await mem_client.memory.add(agent.id, f"fact number {number} about topic {number * 7}")
        for number in range(40)
    ]
    assert mem_client.memory._stores[agent.id].index.uses_graph
    found = await mem_client.memory.search(agent.id, "fact number 23 about topic 161", k=3)
    assert found[0].id == ids[23]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert await mem_client.memory.delete(agent.id, ids[23])
    found = await mem_client.memory.search(agent.id, "fact number 23 about topic 161", k=3)
    assert ids[23] not in [result.id for result in found]
    assert len(found) == 3


async def test_concurrent_adds_write_the_index_one_at_a_time(
    mem_client: ResonantGenesis, anyio_backend: str
) -> None:
    """An index has one writer at a time: adds in worker threads at once could both build the
    partition's first graph and lose memories."""
    import threading
    import time

    from rgruntime.semantic import HnswSettings

    mem_client.memory.index_settings = HnswSettings(exact_limit=16)
    agent = await mem_client.agents.create(name="A")
    await mem_client.memory.add(agent.id, "the first memory")
    index = mem_client.memory._stores[agent.id].index
    apply = index.apply
    guard = threading.Lock()
    writers = {"now": 0, "most": 0}

    def watched_apply(*args: Any) -> None:
        with guard:
            writers["now"] += 1
            writers["most"] = max(writers["most"], writers["now"])
        try:
            time.sleep(0.002)  # long enough for a second writer to overlap
            apply(*args)
        finally:
            with guard:
                writers["now"] -= 1

    index.apply = watched_apply  # type: ignore[method-assign]
    ids: list[str] = []

    async def add(number: int) -> None:
        ids.append(await mem_client.memory.add(agent.id, f"fact {number} about topic {number}"))

    async with anyio.create_task_group() as group:
        for number in range(30):
            group.start_soon(add, number)
    assert writers["most"] == 1
    assert index.uses_graph
    assert len(index) == 31
    for number in (0, 17, 29):
        found = await mem_client.memory.search(agent.id, f"fact {number} about topic {number}", k=1)
        assert found[0].similarity == pytest.approx(1.0, abs=1e-5)


class SlowEmbedder:
    """The hashing embedder, taking ``delay`` seconds per call (to cancel an add meanwhile)."""

    def __init__(self, delay: float) -> None:
        from rgruntime.semantic import HashingEmbedder

        self.inner = HashingEmbedder()
        self.name = "slow-hashing"
        self.dimension = self.inner.dimension
        self.delay = delay

    async def embed(self, texts: Sequence[str]) -> Any:
        await anyio.sleep(self.delay)
        return self.inner.encode(texts)


async def test_a_cancelled_add_stores_nothing(anyio_backend: str) -> None:
    embedder = SlowEmbedder(delay=0.2)
    async with ResonantGenesis(embedder=embedder) as client:
        agent = await client.agents.create(name="A")
        embedder.delay = 0
        kept = await client.memory.add(agent.id, "alpha")
        cached = await client.memory.search(agent.id, "beta")
        embedder.delay = 5
        with anyio.move_on_after(0.1) as scope:
            await client.memory.add(agent.id, "beta gamma")  # a text never embedded yet
        assert scope.cancelled_caught
        assert [record.id for record in client.memory.list(agent.id)] == [kept]
        embedder.delay = 0
        assert await client.memory.search(agent.id, "beta") == cached  # still cached, unchanged


async def test_a_new_memory_configuration_replaces_cached_lookups(anyio_backend: str) -> None:
    first = CountingSearch(["alpha"])
    second = CountingSearch(["alpha", "alpha beta"])
    async with ResonantGenesis(memory_search=first) as client:
        agent = await client.agents.create(name="A")
        await client.memory.search(agent.id, "alpha")
        await client.agents.update(agent.id, temperature=0.5)  # not about memory: lookups stay
        await client.memory.search(agent.id, "alpha")
        assert first.calls == ["alpha"]
        await client.agents.update(agent.id, memory_config={"search": second})
        assert len(await client.memory.search(agent.id, "alpha")) == 2  # the new store
        assert second.calls == ["alpha"]
