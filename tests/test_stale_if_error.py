"""Stale-if-error: an expired entry answers, marked stale, when its reload fails (for a while)."""

from __future__ import annotations

import anyio
import pytest

import rgruntime
from rgruntime import Layer

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

CONFIG = {"layers": {"prices": {"ttl": 60, "stale_if_error": "10m"}}}


class Outage(Exception):
    pass


async def fetch_fresh() -> str:
    return "fresh"


async def outage() -> str:
    raise Outage("the price service is down")


async def test_an_expired_entry_answers_marked_stale_when_its_reload_fails() -> None:
    async with rgruntime.open_runtime(CONFIG) as runtime:
        layer = runtime.layer("prices")
        await layer.set("eur", "yesterday's")
        await anyio.sleep(61)  # expired
        assert await layer.get("eur") is None  # never served as fresh
        found = await layer.lookup("eur", outage)
        assert (found.value, found.source, found.stale) == ("yesterday's", "stale", True)
        assert isinstance(found.error, Outage)
        assert await layer.get_or_load("eur", outage) == "yesterday's"  # the same, unmarked
        stats = layer.stats()
        assert (stats.stale_served, stats.load_failures) == (2, 2)
        # A reload that works replaces it, and then the fresh value answers.
        found = await layer.lookup("eur", fetch_fresh)
        assert (found.value, found.source) == ("fresh", "loaded")
        assert (await layer.lookup("eur", outage)).source == "hit"


async def test_the_grace_is_bounded() -> None:
    async with rgruntime.open_runtime(CONFIG) as runtime:
        layer = runtime.layer("prices")
        await layer.set("eur", "old")
        await anyio.sleep(60 + 599)
        assert (await layer.lookup("eur", outage)).stale
        await anyio.sleep(2)  # 10 minutes past its deadline: gone
        with pytest.raises(Outage):
            await layer.lookup("eur", outage)
        assert layer.statistics().stale_copies == 0


@pytest.mark.parametrize(
    "change",
    ["delete", "invalidate_key", "invalidate_tag", "invalidate_pattern", "clear", "runtime"],
)
async def test_a_known_change_drops_the_stale_copy(change: str) -> None:
    async with rgruntime.open_runtime(CONFIG) as runtime:
        layer = runtime.layer("prices")
        await layer.set("eur", "old", tags=["fx:eur"])
        await anyio.sleep(61)
        await layer.cleanup()
        assert layer.statistics().stale_copies == 1
        if change == "delete":
            await layer.delete("eur")
        elif change == "invalidate_key":
            await layer.invalidate(key="eur")
        elif change == "invalidate_tag":
            await layer.invalidate(tags=["fx"])
        elif change == "invalidate_pattern":
            await layer.invalidate(pattern="e*")
        elif change == "clear":
            await layer.clear()
        else:
            await runtime.invalidate(tags=["fx:eur"])
        assert layer.statistics().stale_copies == 0
        with pytest.raises(Outage):
            await layer.lookup("eur", outage)


async def test_stale_copies_count_in_the_budget_and_go_first() -> None:
    config = {"layers": {"prices": {"ttl": 60, "stale_if_error": "1h", "max_size": 10_000}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("prices")
        for i in range(4):
            await layer.set(f"old{i}", i, size=2000)
        await anyio.sleep(61)
        await layer.cleanup()
        assert layer.stats().size_bytes == 8000  # expired, but still held
        assert layer.statistics().stale_copies == 4
        for i in range(4):
            await layer.set(f"new{i}", i, size=2000)
        # Room was made from the stale copies, oldest first; no live entry was evicted.
        assert layer.stats().size_bytes <= 10_000
        assert layer.stats().evictions == 0
        assert all(f"new{i}" in layer for i in range(4))


async def test_without_the_setting_an_expired_entry_is_gone() -> None:
    async with rgruntime.open_runtime({"layers": {"plain": {"ttl": 60}}}) as runtime:
        layer: Layer = runtime.layer("plain")
        await layer.set("eur", "old")
        await anyio.sleep(61)
        with pytest.raises(Outage):
            await layer.lookup("eur", outage)
        assert layer.stats().stale_served == 0


async def test_a_setting_that_is_not_a_duration_is_refused() -> None:
    with pytest.raises(rgruntime.ConfigError) as raised:
        rgruntime.open_runtime({"layers": {"prices": {"stale_if_error": "soon"}}})
    assert raised.value.field.endswith("stale_if_error")


async def test_the_client_serves_a_stale_answer_when_the_model_fails_and_says_so() -> None:
    from rgruntime import ResonantGenesis
    from rgruntime.providers import SimulatedProvider

    class FlakyProvider(SimulatedProvider):
        down = False

        async def complete(self, request):  # type: ignore[no-untyped-def]
            if self.down:
                raise Outage("the model provider is down")
            return await super().complete(request)

    provider = FlakyProvider()
    # The model layer's copy of the raw output expires too: the provider must be asked again.
    cache_config = {"layers": {"response": {"stale_if_error": "1h"}, "model": {"ttl": 30}}}
    async with ResonantGenesis(cache_config=cache_config, provider=provider) as client:
        agent = await client.agents.create(
            name="FAQ", cache_config={"response_cache": {"enabled": True, "ttl": 60}}
        )
        first = await client.sessions.execute(agent_id=agent.id, goal="Business hours?")
        assert not first.stale
        await anyio.sleep(61)
        provider.down = True
        degraded = await client.sessions.execute(agent_id=agent.id, goal="Business hours?")
        assert (degraded.stale, degraded.cached, degraded.output) == (True, True, first.output)
        assert isinstance(degraded.error, Outage)
        assert client.runtime.layer("response").stats().stale_served == 1
