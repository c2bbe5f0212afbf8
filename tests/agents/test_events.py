"""``client.events``: handlers, the guide's event-based invalidation, built-in events, failures,
and the bus's lifetime."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from rgruntime import (
    Event,
    EventBus,
    InvalidArgumentError,
    ResonantGenesis,
    RuntimeClosedError,
)
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def test_the_guides_event_based_invalidation(client: ResonantGenesis) -> None:
    await client.agents.create(name="Catalog Bot", agent_id="agent_123")
    seen: list[Event] = []

    # Invalidate on events
    @client.events.on("data.updated")
    async def invalidate_cache(event: Event) -> None:
        seen.append(event)
        await client.cache.invalidate(tags=[event.data_type])

    first = await client.sessions.execute(
        agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
    )
    assert not first.cached
    hit = await client.sessions.execute("agent_123", "Get product info")
    assert (hit.cached, hit.layer) == (True, "response")  # a hit

    assert await client.events.emit("data.updated", data_type="products") == 1
    # emit returned after its handler finished: the answer is gone now.
    assert [event.data_type for event in seen] == ["products"]
    assert await client.cache.get(first.cache_key) is None
    again = await client.sessions.execute("agent_123", "Get product info")
    assert again.layer != "response"  # a miss: it ran again (its model call hit the model cache)


async def test_an_unrelated_event_invalidates_nothing(client: ResonantGenesis) -> None:
    await client.agents.create(name="Bot", agent_id="agent_123")

    @client.events.on("data.updated")
    async def invalidate_cache(event: Event) -> None:
        await client.cache.invalidate(tags=[event.data_type])

    await client.sessions.execute("agent_123", "Get product info", cache_tags=["products"])
    await client.events.emit("data.updated", data_type="pricing")
    await client.events.emit("other.event", data_type="products")
    assert (await client.sessions.execute("agent_123", "Get product info")).layer == "response"


async def test_a_failing_handler_is_logged_and_counted_and_the_runtime_goes_on(
    client: ResonantGenesis, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await client.agents.create(name="Bot")
    ran: list[str] = []

    @client.events.on("data.updated")
    async def broken(event: Event) -> None:
        raise ValueError("handler bug")

    @client.events.on("data.updated")
    async def working(event: Event) -> None:
        await anyio.sleep(1)
        ran.append(event.data_type)

    with caplog.at_level(logging.ERROR, logger="rgruntime.events"):
        assert await client.events.emit("data.updated", data_type="products") == 2
    assert ran == ["products"]  # the other handler ran to its end
    assert "handler bug" in caplog.text
    assert "broken" in caplog.text
    stats = client.events.stats()
    assert (stats.failures, stats.delivered, dict(stats.failures_by_event)) == (
        1,
        1,
        {"data.updated": 1},
    )

    # The runtime and the bus keep working.
    await client.sessions.execute(agent.id, "Hi")
    assert (await client.sessions.execute(agent.id, "Hi")).layer == "response"
    await client.events.emit("data.updated", data_type="pricing")
    assert ran == ["products", "pricing"]
    assert client.events.stats().failures == 2
    assert client.runtime.is_open


async def test_emit_waits_for_every_handler(client: ResonantGenesis) -> None:
    finished: list[int] = []

    for delay in (3, 1, 2):

        async def handler(event: Event, delay: int = delay) -> None:
            await anyio.sleep(delay)
            finished.append(delay)

        client.events.add_handler("slow", handler)
    started = anyio.current_time()
    assert await client.events.emit("slow") == 3
    assert sorted(finished) == [1, 2, 3]
    # The handlers ran concurrently: as long as the slowest, not the sum.
    assert anyio.current_time() - started == pytest.approx(3, abs=0.01)


async def test_an_event_nobody_listens_to_returns_at_once(client: ResonantGenesis) -> None:
    assert await client.events.emit("nobody.listens", x=1) == 0
    assert client.events.emit_nowait("nobody.listens") is False
    assert client.events.stats().emitted == 0


async def test_handlers_by_pattern_and_plain_functions(client: ResonantGenesis) -> None:
    names: list[str] = []
    client.events.add_handler("cache.*", lambda event: names.append(event.name))

    @client.events.on("*")
    async def everything(event: Event) -> None:
        names.append("*" + event.name)

    await client.events.emit("cache.custom", layer="x")
    await client.events.emit("data.updated")
    assert sorted(names) == ["*cache.custom", "*data.updated", "cache.custom"]
    assert client.events.off("*", everything) is True
    assert client.events.off("*", everything) is False
    await client.events.emit("data.updated")
    assert names.count("*data.updated") == 1


async def test_a_handler_may_emit_and_await_another_event(client: ResonantGenesis) -> None:
    order: list[str] = []

    @client.events.on("outer")
    async def outer(event: Event) -> None:
        await client.events.emit("inner")
        order.append("outer")

    @client.events.on("inner")
    async def inner(event: Event) -> None:
        order.append("inner")

    with anyio.fail_after(5):
        await client.events.emit("outer")
    assert order == ["inner", "outer"]


async def test_event_data_as_attributes() -> None:
    event = Event("data.updated", {"data_type": "products"})
    assert event.data_type == "products"
    assert event.data == {"data_type": "products"}
    with pytest.raises(AttributeError, match="data_type"):
        _ = event.missing
    with pytest.raises(TypeError):
        event.data["x"] = 1  # type: ignore[index]
    assert "data_type='products'" in repr(event)


async def test_built_in_cache_hit_and_miss_events(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Bot")
    events: list[tuple[str, Any, Any]] = []

    @client.events.on("cache.hit")
    @client.events.on("cache.miss")
    async def record(event: Event) -> None:
        events.append((event.name, event.layer, event.goal))

    await client.sessions.execute(agent.id, "Hi")
    await client.sessions.execute(agent.id, "Hi")
    await client.sessions.execute(agent.id, "Hi", cache=False)  # no cache: no event
    await client.events.flush()
    # Queued events' handlers run concurrently: in no promised order.
    assert sorted(events) == [("cache.hit", "response", "Hi"), ("cache.miss", "response", "Hi")]


async def test_built_in_eviction_and_invalidation_events(provider: SimulatedProvider) -> None:
    async with ResonantGenesis(
        provider=provider, cache_config={"layers": {"tool": {"max_entries": 2}}}
    ) as client:
        removed: list[tuple[str, str, str, str]] = []

        @client.events.on("cache.evicted")
        @client.events.on("cache.invalidated")
        @client.events.on("cache.expired")
        async def record(event: Event) -> None:
            removed.append((event.name, event.layer, event.key, event.reason))

        tools = client.runtime.layer("tool")
        for key in ("a", "b", "c"):
            await tools.set(key, key, tags=["t"], ttl=10 if key == "c" else None)
        await tools.cleanup()
        await client.runtime.invalidate(tags=["t"])
        await tools.set("d", "d")
        await tools.delete("d")
        await tools.set("e", "e", ttl=5)
        await anyio.sleep(6)
        await client.events.flush()
        names = [name for name, *_ in removed]
        assert names.count("cache.evicted") == 1
        assert ("cache.invalidated", "tool", "d", "deleted") in removed
        assert ("cache.expired", "tool", "e", "expired") in removed
        assert sum(1 for item in removed if item[3] == "invalidated") == 2


async def test_built_in_agent_and_session_events(client: ResonantGenesis) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    @client.events.on("agent.*")
    @client.events.on("session.*")
    async def record(event: Event) -> None:
        events.append((event.name, dict(event.data)))

    agent = await client.agents.create(name="Bot", agent_id="agent_1")
    await client.agents.update(agent.id, temperature=0.5)
    session = await client.sessions.create(agent.id)
    await client.sessions.execute(agent.id, "Hi", session_id=session.id)
    await client.sessions.delete(session.id)
    await client.agents.delete(agent.id)
    # Awaited by the call that made the change: no flush needed.
    assert [name for name, _ in events] == [
        "agent.created",
        "agent.updated",
        "session.created",
        "session.updated",
        "session.deleted",
        "agent.deleted",
    ]
    assert events[1][1] == {"agent_id": "agent_1", "version": 2}
    assert events[3][1] == {"session_id": session.id, "agent_id": "agent_1"}


async def test_agents_change_with_the_client_closed_without_events() -> None:
    client = ResonantGenesis()
    heard: list[str] = []
    client.events.add_handler("agent.created", lambda event: heard.append(event.name))
    await client.agents.create(name="Bot")  # registered before opening: no delivery, no error
    assert heard == []
    with pytest.raises(RuntimeClosedError, match="not open"):
        await client.events.emit("data.updated")


async def test_bad_registrations_are_refused(client: ResonantGenesis) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.events.on("")
    assert (caught.value.field, caught.value.value) == ("event", "")
    assert "data.updated" in caught.value.accepted
    with pytest.raises(InvalidArgumentError, match="handler"):
        client.events.add_handler("data.updated", "not a function")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="event"):
        await client.events.emit(42)  # type: ignore[arg-type]
    assert client.events.stats().handlers == 0


async def test_closing_the_client_cancels_running_handlers(provider: SimulatedProvider) -> None:
    states: list[str] = []
    async with ResonantGenesis(provider=provider) as client:

        @client.events.on("long")
        async def long(event: Event) -> None:
            states.append("started")
            try:
                await anyio.sleep_forever()
            finally:
                states.append("cancelled")

        assert client.events.emit_nowait("long") is True
        await anyio.sleep(1)
        assert states == ["started"]
    # The bus's task group closed with the client: the handler did not outlive it.
    assert states == ["started", "cancelled"]
    assert client.events.emit_nowait("long") is False


async def test_a_cancelled_emitter_leaves_its_handlers_running(client: ResonantGenesis) -> None:
    done: list[str] = []

    @client.events.on("job")
    async def job(event: Event) -> None:
        await anyio.sleep(5)
        done.append("job")

    with anyio.move_on_after(1):
        await client.events.emit("job")
    assert done == []
    await anyio.sleep(5)
    assert done == ["job"]  # the handler belongs to the bus, not to the emitter


async def test_queued_events_beyond_the_limit_are_dropped_and_counted() -> None:
    bus = EventBus(max_pending=2)
    release = anyio.Event()

    async def blocked(event: Event) -> None:
        await release.wait()

    bus.add_handler("x", blocked)
    async with anyio.create_task_group() as group:
        bus.attach(group)
        assert [bus.emit_nowait("x") for _ in range(3)] == [True, True, False]
        assert (bus.stats().pending, bus.stats().dropped) == (2, 1)
        release.set()
        await bus.flush()
        assert bus.stats().pending == 0
        assert bus.stats().delivered == 2
    with pytest.raises(InvalidArgumentError, match="max_pending"):
        EventBus(max_pending=0)


async def test_built_in_tool_events(client: ResonantGenesis) -> None:
    updates: list[tuple[str, int]] = []
    client.events.add_handler(
        "tool.updated", lambda event: updates.append((event.tool, event.version))
    )

    async def web_search(query: str) -> str:
        """Search the web."""
        return query

    client.tools.register(web_search)  # new: no event
    client.tools.register(web_search)  # a name already taken: an update (queued)
    await client.tools.update("web_search")  # awaited
    await client.events.flush()
    assert sorted(updates) == [("web_search", 2), ("web_search", 3)]


async def test_layers_report_removals_only_while_someone_listens(client: ResonantGenesis) -> None:
    tool = client.runtime.layer("tool")
    before = tool.statistics().removal_listeners

    async def handler(event: Event) -> None:
        pass

    client.events.add_handler("data.updated", handler)
    assert tool.statistics().removal_listeners == before  # nothing to report to it
    client.events.add_handler("cache.*", handler)
    client.events.add_handler("cache.evicted", handler)
    assert tool.statistics().removal_listeners == before + 1  # one listener per layer
    client.events.off("cache.*", handler)
    assert tool.statistics().removal_listeners == before + 1
    client.events.off("cache.evicted", handler)
    assert tool.statistics().removal_listeners == before


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_events_and_memory_on_the_blocking_client(backend: str) -> None:
    import rgruntime

    seen: list[str] = []
    with rgruntime.connect(embedder="hashing", backend=backend) as client:
        agent = client.agents.create(name="Bot")

        @client.events.on("data.updated")
        async def handler(event: Event) -> None:
            seen.append(event.data_type)

        assert client.events.emit("data.updated", data_type="products") == 1
        client.memory.add(agent.id, "alpha beta")
        assert client.memory.search(agent.id, "alpha")[0].text == "alpha beta"
        assert client.cache.warm(agent.id, ["Hi"]).warmed == ("Hi",)
    assert seen == ["products"]
