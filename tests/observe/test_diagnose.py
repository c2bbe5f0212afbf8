"""Acceptance (issue 15): three workloads, each with one planted cause of a low hit rate, are
each diagnosed as that cause first; find_stale and memory_usage on a live runtime."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import anyio
import pytest

from rgruntime import open_runtime
from rgruntime.errors import InvalidArgumentError
from rgruntime.observe import Operations
from rgruntime.runtime.runtime import Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def _value() -> str:
    return "v" * 50


async def _ask(runtime: Runtime, layer: str, key: str) -> None:
    await runtime.layer(layer).get_or_load(key, _value)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    config = {
        "layers": {
            "weather": {"ttl": 3600},
            "quotes": {"ttl": 10},
            "catalog": {"ttl": 3600, "max_entries": 20},
        }
    }
    async with open_runtime(config) as runtime:
        yield runtime


async def test_volatile_keys_are_key_variance(runtime: Runtime) -> None:
    operations = Operations(runtime)
    for round_ in range(15):
        for city in ("Paris", "London", "Tokyo", "Lima", "Oslo"):
            # The same question, stamped with the time and a request id.
            key = f"weather:{city}:2026-12-07T10:{round_:02d}:00Z:req-{100000 + round_ * 7}"
            await _ask(runtime, "weather", key)
        await anyio.sleep(60)
    await operations.settle()
    diagnosis = operations.diagnose()
    assert diagnosis.issue == "key_variance"
    first = diagnosis.causes[0]
    assert first.share > 80  # every request after each city's first
    assert set(first.evidence["parts"]) == {"timestamp", "id"}
    assert "short_ttl" not in [cause.issue for cause in diagnosis.causes]
    assert diagnosis.as_dict()["issue"] == "key_variance"


async def test_ttl_shorter_than_rerequest_time_is_short_ttl(runtime: Runtime) -> None:
    operations = Operations(runtime)
    keys = [f"quote:{symbol}" for symbol in ("AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA")]
    for _ in range(12):
        for key in keys:
            await _ask(runtime, "quotes", key)
        await anyio.sleep(15)  # re-requested every 15 s; the TTL is 10 s
    await operations.settle()
    diagnosis = operations.diagnose()
    assert diagnosis.issue == "short_ttl"
    first = diagnosis.causes[0]
    assert first.share > 80
    # Covering the re-request time: at least 15 s.
    assert first.evidence["recommended_ttl"] >= 15
    assert operations.analyze().layers["quotes"].recommended_ttl >= 15
    assert diagnosis.causes[0].issue == "short_ttl"
    assert "key_variance" not in [cause.issue for cause in diagnosis.causes]


async def _slow_value() -> str:
    await anyio.sleep(0.5)
    return "v" * 50


async def test_budget_below_working_set_is_small_cache(runtime: Runtime) -> None:
    operations = Operations(runtime, usd_per_hit=lambda layer: 0.002)
    rng = random.Random(7)
    for _ in range(2000):  # 60 keys, room for 20; each load takes half a second
        await runtime.layer("catalog").get_or_load(f"product:{rng.randrange(60)}", _slow_value)
    await operations.settle()
    # What a larger size would buy, at the measured load cost and the given price of a miss.
    catalog = operations.analyze(target_hit_rate=90).layers["catalog"]
    assert catalog.recommended_entries is not None
    assert 50 <= catalog.recommended_entries <= 60  # 90% of uniform requests over 60 keys
    (change,) = [c for c in catalog.changes if c.entries == catalog.recommended_entries]
    assert change.hit_rate >= 90
    assert change.extra_hits_per_hour > 0
    assert change.load_seconds_saved_per_hour == pytest.approx(0.5 * change.extra_hits_per_hour)
    assert change.usd_saved_per_hour == pytest.approx(0.002 * change.extra_hits_per_hour)
    assert catalog.as_dict()["changes"][0]["entries"] == catalog.changes[0].entries
    diagnosis = operations.diagnose(layer="catalog")
    assert diagnosis.issue == "small_cache"
    first = diagnosis.causes[0]
    assert first.share > 80
    # The curve says what size would buy ten more points of hit rate: more than the 20 held.
    assert first.evidence["recommended_sizes"]["catalog"]["entries"] > 20
    assert [cause.issue for cause in diagnosis.causes] == ["small_cache"]


async def test_no_misses_no_issue(runtime: Runtime) -> None:
    operations = Operations(runtime)
    await _ask(runtime, "weather", "weather:Paris")
    for _ in range(10):
        await _ask(runtime, "weather", "weather:Paris")
    await operations.settle()
    diagnosis = operations.diagnose(layer="weather")
    assert diagnosis.issue is None
    assert diagnosis.causes == ()


async def test_find_stale_and_memory_usage(runtime: Runtime) -> None:
    operations = Operations(runtime)
    weather = runtime.layer("weather")
    await weather.set("weather:old", "x" * 5000)
    await anyio.sleep(1000)
    await weather.set("weather:new", "y" * 100)
    await operations.settle()
    stale = operations.find_stale(max_age=600)
    assert [(entry.key, entry.layer) for entry in stale] == [("weather:old", "weather")]
    assert 1000 <= stale[0].age < 1001
    assert 2599 < stale[0].ttl_left <= 2600
    assert operations.find_stale(max_age="1h") == []
    memory = operations.memory_usage()
    assert memory.used == runtime.stats().size_bytes
    assert memory.available is None  # no budget: unbounded
    assert memory.largest_entries[0].key == "weather:old"
    assert (
        memory.largest_entries[0].size
        == weather.stats().size_bytes - memory.largest_entries[1].size
    )
    assert memory.as_dict()["largest_entries"][0]["key"] == "weather:old"


async def test_bad_arguments_are_refused(runtime: Runtime) -> None:
    operations = Operations(runtime)
    with pytest.raises(InvalidArgumentError, match="max_age"):
        operations.find_stale(max_age="soon")
    with pytest.raises(InvalidArgumentError, match="agent_id"):
        operations.diagnose(agent_id=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="target_hit_rate"):
        operations.analyze(target_hit_rate=150)


async def test_an_agents_goals_with_timestamps_are_key_variance() -> None:
    from rgruntime import ResonantGenesis

    async with ResonantGenesis() as client:
        agent = await client.agents.create(name="Reporter")
        other = await client.agents.create(name="Steady")
        for minute in range(10):
            goal = f"Summarise the news at 2026-12-07 09:{minute:02d}"
            await client.sessions.execute(agent_id=agent.id, goal=goal)
            await client.sessions.execute(agent_id=other.id, goal="Summarise the news")
        diagnosis = await client.cache.diagnose(agent_id=agent.id)
        steady = await client.cache.diagnose(agent_id=other.id)
    assert diagnosis.issue == "key_variance"
    assert diagnosis.causes[0].share == 90.0  # every request after the first
    assert diagnosis.causes[0].evidence["parts"] == {"timestamp": 9}
    assert steady.issue is None


async def test_an_agents_memory_queries_with_ids_are_key_variance() -> None:
    from rgruntime import ResonantGenesis

    async def search(agent_id: str, query: str, k: int) -> list[dict[str, str]]:
        return [{"text": "Refunds take 5 days."}]

    async with ResonantGenesis(memory_search=search) as client:
        agent = await client.agents.create(name="Support")
        for ticket in range(8):
            await client.memory.search(agent.id, f"refund policy (ticket 4{ticket:04d})")
        await client.memory.search(agent.id, "refund policy (ticket 40007)")  # a hit
        diagnosis = await client.cache.diagnose(agent_id=agent.id, layer="memory")
    assert diagnosis.issue == "key_variance"
    assert diagnosis.causes[0].misses == 7
    assert diagnosis.causes[0].evidence["parts"] == {"id": 7}
