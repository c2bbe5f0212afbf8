"""Remote layers when their server dies, hangs and comes back.

Each test runs a server of its own (Redis, and Memcached where it applies). Callers never see the
outage (``strict=False``, the default): reads fall back to the near cache or to their loaders,
writes are kept in process and written back when the server returns; with ``strict=True`` they
raise :class:`StoreUnavailableError` instead. Recovery needs no restart of the runtime.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import rgruntime
from rgruntime import MISSING, Layer, Runtime
from rgruntime.stores import StoreError, StoreUnavailableError, make_store
from tests.remote.conftest import compute_a_chain, eventually
from tests.servers import MemcachedServer, RedisServer, started

pytestmark = pytest.mark.anyio

Server = RedisServer | MemcachedServer

#: Seconds a call may take: short, so that a hung server costs the test little.
_TIMEOUT = 0.5
#: The longest a restarted server may take to be used again (client reconnection, breaker
#: probes: at most 2 s apart) on a loaded machine.
_RECOVERY = 30.0


@pytest.fixture(params=["redis", "memcached"])
def private_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server: Server = RedisServer(tmp_path) if request.param == "redis" else MemcachedServer()
    with started(server):
        yield server


@pytest.fixture
def redis_private(tmp_path: Path) -> Iterator[RedisServer]:
    with started(RedisServer(tmp_path)) as server:
        yield server


def _backend(server: Server) -> dict[str, Any]:
    if isinstance(server, RedisServer):
        return {"type": "redis", "url": server.url, "prefix": "o:", "timeout": _TIMEOUT}
    return {"type": "memcached", "servers": [server.address], "prefix": "o:", "timeout": _TIMEOUT}


@contextlib.asynccontextmanager
async def _paused(server: Server) -> AsyncIterator[None]:
    """The server stopped (SIGSTOP: connections stay open, nothing answers), resumed on exit."""
    await anyio.to_thread.run_sync(server.pause)
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(server.resume)


def _runtime(server: Server, **layer: Any) -> Runtime:
    settings = {"tool": layer, "session": layer} if layer else {}
    return rgruntime.open_runtime({"cache_backend": _backend(server), "layers": settings})


async def _on_the_server(server: Server, layer: str, key: str) -> Any:
    """What a fresh runtime reads from the server (no near cache of its own)."""
    async with _runtime(server, near_cache=False) as fresh:
        return await fresh.layer(layer).get(key, MISSING)


async def _until_written_back(*layers: Layer) -> None:
    """Wait (bounded) until every write and invalidation the layers kept reached the server."""

    def written_back() -> bool:
        healths = [layer.statistics().store for layer in layers]
        return all(
            health is not None
            and health.pending_writes == 0
            and health.kept_removals == 0
            and health.kept_cascades == 0
            for health in healths
        )

    await eventually(written_back, limit=_RECOVERY)


async def test_a_server_killed_under_10000_operations_from_50_tasks(
    private_server: Server,
) -> None:
    async with _runtime(private_server) as runtime:
        layer = runtime.layer("tool")
        done = itertools.count()
        errors: list[BaseException] = []
        half_way = anyio.Event()

        async def loader() -> str:
            return "loaded"

        async def worker(task: int) -> None:
            for step in range(200):
                key = f"k{(task * 7 + step) % 100}"
                try:
                    match step % 5:
                        case 0 | 1:
                            await layer.get_or_load(key, loader, tags=[f"group:{step % 3}"])
                        case 2:
                            await layer.get(key)
                        case 3:
                            await layer.set(key, step, tags=["group:written"])
                        case _:
                            if step % 20 == 4:
                                await layer.invalidate(tags=["group:1"])
                            else:
                                await layer.delete(key)
                except Exception as error:  # every exception is a failure of the test
                    errors.append(error)
                if next(done) == 2_000:
                    half_way.set()

        async with anyio.create_task_group() as group:
            for task in range(50):
                group.start_soon(worker, task)
            await half_way.wait()
            await anyio.to_thread.run_sync(private_server.kill)
        assert next(done) == 10_000
        assert errors == []
        health = layer.statistics().store
        assert health is not None
        assert health.errors > 0
        assert health.outages >= 1

        # The server comes back: the same runtime writes to it and reads from it again.
        await anyio.to_thread.run_sync(private_server.start)

        async def writes_reach_the_server() -> bool:
            await layer.set("after", "restart")
            return await _on_the_server(private_server, "tool", "after") == "restart"

        await eventually(writes_reach_the_server, limit=_RECOVERY)
        async with _runtime(private_server) as other:
            await other.layer("tool").set("from-other", 42)
        assert await layer.get("from-other") == 42  # a hit served by the server
        assert layer.statistics().store.state == "ok"  # type: ignore[union-attr]


async def test_session_state_written_during_an_outage_is_written_back(
    private_server: Server,
) -> None:
    async with _runtime(private_server) as runtime:
        sessions = runtime.layer("session")
        await sessions.set("s:before", {"turns": 1})
        await anyio.to_thread.run_sync(private_server.kill)
        for turn in range(3):  # the first calls find out; the breaker answers the rest
            await sessions.set("s:during", {"turns": turn})
        sessions.set_nowait("s:queued", {"turns": 9})
        assert await sessions.get("s:during") == {"turns": 2}  # served here meanwhile
        health = sessions.statistics().store
        assert health is not None
        assert health.state in ("down", "probing")  # probing: a retry is on its way
        assert health.pending_writes == 2
        assert health.kept_during_outage >= 1
        await anyio.to_thread.run_sync(private_server.start)

        await _until_written_back(sessions)
        assert await _on_the_server(private_server, "session", "s:during") == {"turns": 2}
        assert await _on_the_server(private_server, "session", "s:queued") == {"turns": 9}
        assert sessions.statistics().store.write_back_dropped == 0  # type: ignore[union-attr]


async def test_writes_kept_beyond_the_limit_drop_the_oldest_and_say_so(
    redis_private: RedisServer,
) -> None:
    async with _runtime(redis_private, write_back_limit=3) as runtime:
        layer = runtime.layer("tool")
        await anyio.to_thread.run_sync(redis_private.kill)
        for n in range(5):
            await layer.set(f"k{n}", n)
        health = layer.statistics().store
        assert health is not None
        assert (health.pending_writes, health.write_back_dropped) == (3, 2)
        await anyio.to_thread.run_sync(redis_private.start)
        await _until_written_back(layer)
        assert await _on_the_server(redis_private, "tool", "k0") is MISSING  # dropped
        assert await _on_the_server(redis_private, "tool", "k4") == 4


async def test_strict_layers_raise_while_the_server_is_away(private_server: Server) -> None:
    async with _runtime(private_server, strict=True) as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", 1)
        await anyio.to_thread.run_sync(private_server.kill)
        with pytest.raises(StoreUnavailableError):
            await layer.set("k", 2)
        with pytest.raises(StoreUnavailableError):
            await layer.get("absent")

        async def loader() -> int:
            return 3

        with pytest.raises(StoreUnavailableError):
            await layer.get_or_load("other", loader)


async def test_a_hung_server_costs_callers_a_timeout_not_an_error(
    private_server: Server,
) -> None:
    async with _runtime(private_server) as runtime:
        layer = runtime.layer("tool")
        await layer.set("k", "near")
        async with _paused(private_server):
            calls = 0

            async def loader() -> str:
                nonlocal calls
                calls += 1
                return "loaded"

            with anyio.fail_after(10 * _TIMEOUT + 5):
                assert await layer.get_or_load("absent", loader) == "loaded"
                assert await layer.get("k") == "near"  # the near copy answers
                await layer.set("other", 1)  # kept for later
            assert calls == 1
        await _until_written_back(layer)


async def test_an_undecodable_entry_is_a_counted_miss(redis_private: RedisServer) -> None:
    async with make_store(_backend(redis_private)) as store:
        await store.set("tool:forged", b"\x93not an envelope")
        async with _runtime(redis_private) as runtime:
            layer: Layer = runtime.layer("tool")
            assert await layer.get("forged", MISSING) is MISSING
            assert layer.statistics().store.undecodable == 1  # type: ignore[union-attr]

            async def loader() -> str:
                return "fresh"

            assert await layer.get_or_load("forged", loader) == "fresh"  # and is replaced
        assert await _on_the_server(redis_private, "tool", "forged") == "fresh"


async def test_an_older_write_failing_late_does_not_replace_newer_changes(
    private_server: Server,
) -> None:
    async with _runtime(private_server) as runtime:
        layer = runtime.layer("tool")
        await layer.set("j", "old")
        async with _paused(private_server), anyio.create_task_group() as group:
            group.start_soon(layer.set, "k", "older")  # fails at the timeout
            group.start_soon(layer.set, "j", "older")
            await anyio.wait_all_tasks_blocked()  # both are waiting for the server
            layer.set_nowait("k", "newer")  # newer changes, while they wait
            layer.delete_nowait("j")
        assert (layer.peek("k", MISSING), layer.peek("j", MISSING)) == ("newer", MISSING)
        await _until_written_back(layer)
        assert await _on_the_server(private_server, "tool", "k") == "newer"
        assert await _on_the_server(private_server, "tool", "j") is MISSING


async def test_invalidations_and_clears_made_while_away_reach_the_server(
    private_server: Server,
) -> None:
    async with _runtime(private_server) as runtime:
        tools, sessions = runtime.layer("tool"), runtime.layer("session")
        for key in ("by-key", "kept"):
            await tools.set(key, "old")
        await tools.set("by-tag", "old", tags=["group:a"])
        await tools.set("by-pattern", "old")
        await sessions.set("s", "old")
        async with _paused(private_server):
            await tools.invalidate(key="by-key")
            await tools.invalidate(tags=["group"])  # hierarchical: group:a goes too
            await tools.invalidate(pattern="by-pat*")
            await sessions.clear()
            await tools.set("by-key", "newer")  # after the invalidation: must survive it
            health = tools.statistics().store
            assert health is not None
            assert health.kept_removals == 2  # the tag and the pattern (keys: kept deletes)

        await _until_written_back(tools, sessions)
    expected = {"by-key": "newer", "kept": "old", "by-tag": MISSING}
    if isinstance(private_server, RedisServer):  # Memcached cannot list keys: its pattern
        expected["by-pattern"] = MISSING  # invalidation reaches the keys this process knew
    for key, value in expected.items():
        assert await _on_the_server(private_server, "tool", key) == value, key
    assert await _on_the_server(private_server, "session", "s") is MISSING


#: How the tool result is removed, by server: Memcached cannot name the entries a tag
#: invalidation removes (tags are versions there), so no tag invalidation of it cascades on the
#: server, direct or kept (docs/stores.md).
_REMOVALS = [
    *(("redis", removal) for removal in ("delete", "key", "tag", "pattern")),
    *(("memcached", removal) for removal in ("delete", "key", "pattern")),
]


@pytest.mark.parametrize(
    ("private_server", "removal"),
    _REMOVALS,
    indirect=["private_server"],
    ids=[f"{server}-{removal}" for server, removal in _REMOVALS],
)
async def test_what_was_computed_from_an_entry_removed_while_away_goes_when_the_removal_lands(
    private_server: Server, removal: str
) -> None:
    # The runtime that computed the chain has stopped: only the edges on the server know that
    # the summary and the answer were computed from the tool result (the other runtimes only
    # read them). One removes the tool result while the server is away; when the server is back
    # and its writer has applied the removal, what was computed from it goes, on the server and
    # in the near caches of both.
    async with _runtime(private_server) as reader, _runtime(private_server) as remover:
        async with _runtime(private_server) as computing:
            await compute_a_chain(computing)
        for runtime in (reader, remover):
            assert await runtime.layer("model").get("summary") == "mild"
            assert await runtime.layer("response").get("answer") == "17 degrees, mild"
        tools = remover.layer("tool")
        assert await tools.get("weather") == {"temp": 17}  # known here (Memcached's patterns)
        async with _paused(private_server):
            match removal:
                case "delete":
                    await tools.delete("weather")
                case "key":
                    await tools.invalidate(key="weather")
                case "tag":
                    await tools.invalidate(tags=["city"])
                case _:
                    await tools.invalidate(pattern="weath*")
            health = tools.statistics().store
            assert health is not None
            # A key's dependents wait to be looked up; a tag's or a pattern's are found when
            # the removal lands (the names it removes are not known before).
            assert health.kept_cascades == (1 if removal in ("delete", "key") else 0)
            assert health.kept_removals == (1 if removal in ("tag", "pattern") else 0)

        await _until_written_back(*(remover.layer(name) for name in ("tool", "model", "response")))

        async def computed_ones_gone() -> bool:
            near = [
                await runtime.layer(layer).get(key, MISSING)
                for runtime in (reader, remover)
                for layer, key in (("model", "summary"), ("response", "answer"))
            ]
            return near == [MISSING] * 4

        await eventually(computed_ones_gone, limit=_RECOVERY)
    assert await _on_the_server(private_server, "model", "summary") is MISSING
    assert await _on_the_server(private_server, "response", "answer") is MISSING
    assert await _on_the_server(private_server, "tool", "weather") is MISSING


async def test_a_value_the_server_refuses_fails_its_caller_and_nothing_else(
    tmp_path: Path,
) -> None:
    with started(MemcachedServer()) as server:  # its largest item: 1 MB by default
        async with _runtime(server) as runtime:
            layer = runtime.layer("tool")
            await layer.set("big", "small at first")
            with pytest.raises(StoreError, match="refused") as refused:
                await layer.set("big", "x" * 2_000_000)
            assert not isinstance(refused.value, StoreUnavailableError)
            assert layer.peek("big", MISSING) is MISSING  # not kept here either
            layer.set_nowait("queued-big", "x" * 2_000_000)  # dropped by the writer, counted
            layer.set_nowait("queued-small", "fine")  # not held behind it
            await _until_written_back(layer)
            health = layer.statistics().store
            assert health is not None
            # Counted as errors (shown), not as an outage: the breaker stays closed.
            assert (health.state, health.refused_writes, health.errors) == ("ok", 2, 2)
            assert health.outages == 0
            assert "refused" in health.last_error
            await layer.set("after", 1)
        assert await _on_the_server(server, "tool", "queued-small") == "fine"
        assert await _on_the_server(server, "tool", "after") == 1
        # (memcached itself drops the key's old value when it refuses a new one as too large)


async def test_writes_that_never_reach_the_server_are_said_lost_at_close(
    redis_private: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with _runtime(redis_private) as runtime:
        layer = runtime.layer("tool")
        await anyio.to_thread.run_sync(redis_private.kill)
        await layer.set("a", 1)
        await layer.set("b", 2)
        await layer.invalidate(tags=["t"])
    lost = [record.getMessage() for record in caplog.records if "never reached" in record.message]
    assert len(lost) == 1
    assert "layer 'tool': closing with 2 write(s) and 1 invalidation(s)" in lost[0]


async def test_a_tagged_write_in_flight_goes_with_an_invalidation_of_its_tag(
    redis_private: RedisServer,
) -> None:
    async with _runtime(redis_private) as runtime:
        layer = runtime.layer("tool")
        await layer.set("warm", 1)
        async with _paused(redis_private), anyio.create_task_group() as group:
            group.start_soon(lambda: layer.set("k", "old", tags=["t"]))
            await anyio.wait_all_tasks_blocked()  # the write waits for the server
            await layer.invalidate(tags=["t"])  # asked after it: both are kept
        await _until_written_back(layer)
    assert await _on_the_server(redis_private, "tool", "k") is MISSING


async def test_a_replica_that_refuses_writes_is_an_outage_not_a_refusal(
    redis_private: RedisServer,
) -> None:
    async with _runtime(redis_private) as runtime:
        layer = runtime.layer("tool")
        await layer.set("a", "old", tags=["t"])
        # Turned into a replica (of nothing that answers): it serves no write ("ReadOnly", as
        # valkey-glide words it), which is what a failover looks like to a client.
        redis_private.command("REPLICAOF", "127.0.0.1", "1")
        try:
            await layer.set("b", "kept")  # kept for later, not refused
            await layer.invalidate(tags=["t"])  # kept for later too
            health = layer.statistics().store
            assert health is not None
            assert health.refused_writes == 0
            assert health.pending_writes >= 1
            assert health.kept_removals == 1
        finally:
            redis_private.command("REPLICAOF", "NO", "ONE")
        await _until_written_back(layer)  # and the runtime is still running
    assert await _on_the_server(redis_private, "tool", "b") == "kept"
    assert await _on_the_server(redis_private, "tool", "a") is MISSING
