"""What every adapter shares (rgruntime.adapters.common), without a framework in the way."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import attrs
import pytest

import rgruntime
from rgruntime.adapters import AdapterCache, cache_controls
from rgruntime.adapters.common import Stored, jsonable
from rgruntime.errors import ConfigError, InvalidArgumentError

pytestmark = pytest.mark.anyio


def request_for(cache: AdapterCache, text: str, **parts: Any) -> Any:
    return cache.request(model="m", exact={"text": text, **parts}, context=parts or None, text=text)


async def test_fetch_shares_one_call_and_reports_hits(runtime: rgruntime.Runtime) -> None:
    cache = AdapterCache(runtime, namespace="demo")
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.05)
        return "answer"

    outcomes = []

    async def ask() -> None:
        outcomes.append(await cache.fetch(request_for(cache, "q"), call, tokens_of=lambda _: 7))

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(ask)
    again = await cache.fetch(request_for(cache, "q"), call, tokens_of=lambda _: 7)
    assert calls == 1
    assert sorted(str(outcome.match) for outcome in outcomes) == ["None", *["joined"] * 3]
    assert (again.cached, again.match, again.tokens_saved) == (True, "exact", 7)
    stats = cache.stats()
    assert (stats.requests, stats.hits, stats.model_calls, stats.tokens_saved) == (5, 4, 1, 28)
    assert stats.hit_rate == 0.8


async def test_a_waiter_cancelled_in_begin_leaves_the_others_alone(
    runtime: rgruntime.Runtime,
) -> None:
    cache = AdapterCache(runtime, namespace="demo")
    request = request_for(cache, "q")
    assert await cache.begin(request) is None  # the lease holder
    with anyio.move_on_after(0.05) as scope:
        await cache.begin(request)  # waits for the holder, then is cancelled
    assert scope.cancelled_caught
    waited: list[Any] = []
    async with anyio.create_task_group() as tasks:

        async def wait() -> None:
            waited.append(await cache.begin(request))

        tasks.start_soon(wait)
        await anyio.sleep(0.01)
        await cache.finish(request, "answer", 3)
    assert waited[0].match == "joined"
    assert waited[0].value == "answer"


async def test_a_lease_whose_call_never_reports_expires(runtime: rgruntime.Runtime) -> None:
    cache = AdapterCache(runtime, namespace="demo", join_timeout=0.05)
    request = request_for(cache, "q")
    assert await cache.begin(request) is None
    assert await cache.begin(request) is None  # waited 0.05 s, then took the lease itself
    await cache.finish(request, "late", 1)
    hit = await cache.begin(request)
    assert hit is not None
    assert hit.value == "late"


async def test_uncacheable_answers_reach_waiters_and_stay_out(runtime: rgruntime.Runtime) -> None:
    cache = AdapterCache(runtime, namespace="demo")
    outcome = await cache.fetch(
        request_for(cache, "q"), _answer("truncated"), tokens_of=len, cacheable=lambda v: False
    )
    assert (outcome.value, outcome.cached) == ("truncated", False)
    assert runtime.layer("model").stats().entries == 0
    assert cache.stats().uncacheable == 1


async def test_entries_carry_namespace_model_adapter_and_call_tags(
    runtime: rgruntime.Runtime,
) -> None:
    cache = AdapterCache(runtime, namespace="demo", tags=["team:a"], ttl="1h")
    with cache_controls(tags=["faq"]), cache_controls(tags=["faq:billing"]):
        request = request_for(cache, "q")
    assert request.tags == ("demo", "model:m", "team:a", "faq", "faq:billing")
    await cache.store(request, "answer", 1)
    assert isinstance(runtime.layer("model").get_nowait(request.key), Stored)
    assert await runtime.invalidate(tags=["faq"]) == 1
    assert await cache.invalidate() == 0


async def test_semantic_options_are_forwarded_to_the_index(runtime: rgruntime.Runtime) -> None:
    """The whole dict reaches runtime.semantic_index, so an option it gains later (such as an
    error bound) passes through without a change here."""
    cache = AdapterCache(runtime, namespace="demo", semantic={"threshold": 0.95, "candidates": 2})
    index = await cache.semantic_index()
    assert (index.cache.threshold, index.cache.candidates) == (0.95, 2)


async def test_an_adapter_can_use_a_resonant_genesis_client() -> None:
    async with rgruntime.ResonantGenesis() as client:
        cache = AdapterCache(client, namespace="demo")
        await cache.fetch(request_for(cache, "q"), _answer("a"), tokens_of=len)
        hit = await cache.fetch(request_for(cache, "q"), _answer("b"), tokens_of=len)
        assert (hit.value, hit.match) == ("a", "exact")
        assert client.cache.get_stats().layers["model"].entries == 1


async def test_an_agent_answer_depends_on_the_adapter_entries_it_used() -> None:
    """A framework call made inside an rgruntime agent's run is a dependency of its answer:
    invalidating the adapter's entry by tag invalidates the cached answer too."""
    async with rgruntime.ResonantGenesis() as client:
        cache = AdapterCache(client, namespace="demo", tags=["kb"])
        runs = 0

        async def run(context: Any) -> str:
            nonlocal runs
            runs += 1
            outcome = await cache.fetch(request_for(cache, "q"), _answer("a"), tokens_of=len)
            return f"agent says {outcome.value}"

        agent = await client.agents.create(name="Framework agent", runner=run)
        first = await client.sessions.execute(agent_id=agent.id, goal="Question")
        assert (await client.sessions.execute(agent_id=agent.id, goal="Question")).cached
        assert await client.cache.invalidate(tags=["kb"]) == 2  # the entry and the answer
        again = await client.sessions.execute(agent_id=agent.id, goal="Question")
        assert not again.cached
        assert again.output == first.output == "agent says a"
        assert runs == 2


def test_on_trio_the_adapters_say_they_need_asyncio() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            cache = AdapterCache(runtime, namespace="demo")
            with pytest.raises(ConfigError, match="asyncio"):
                await cache.fetch(request_for(cache, "q"), _answer("a"), tokens_of=len)
            with pytest.raises(ConfigError, match="asyncio"):
                await cache.begin(request_for(cache, "q"))

    anyio.run(main, backend="trio")


def test_bad_settings_name_the_field() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            with pytest.raises(ConfigError, match="namespace"):
                AdapterCache(runtime, namespace="a:b")
            with pytest.raises(ConfigError, match="cache"):
                AdapterCache("runtime", namespace="a")  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match="tags"):
                AdapterCache(runtime, namespace="a", tags="faq")
            with pytest.raises(InvalidArgumentError, match="read"):
                cache_controls(read="no").__enter__()  # type: ignore[arg-type]
            with pytest.raises(InvalidArgumentError, match="tags"):
                cache_controls(tags="faq").__enter__()

    anyio.run(main)


def test_jsonable_turns_framework_objects_into_key_material() -> None:
    @dataclasses.dataclass
    class Settings:
        temperature: float
        stop: tuple[str, ...]

    @attrs.frozen
    class Tool:
        name: str

    value = {"s": Settings(0.5, ("x",)), "t": Tool("search"), "set": {2, 1}, "o": object}
    data = jsonable(value)
    assert data["s"] == {"temperature": 0.5, "stop": ["x"]}
    assert data["t"] == {"name": "search"}
    assert data["set"] == ["1", "2"]
    assert data["o"] == repr(object)


def _answer(value: str) -> Any:
    async def call() -> str:
        return value

    return call
