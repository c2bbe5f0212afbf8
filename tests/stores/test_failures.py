"""Servers that die, hang and come back: every failure is a StoreUnavailableError, and the store
works again once the server does. Each test runs its own server (the session's are shared).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from rgruntime.stores import RemoteStore, StoreUnavailableError, make_store
from tests.servers import MemcachedServer, RedisServer, ensure_server_binaries

pytestmark = pytest.mark.anyio

_TIMEOUT = 0.5
_RECOVERY_LIMIT = 20.0

Server = RedisServer | MemcachedServer


@pytest.fixture(params=["redis", "memcached"])
def private_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    ensure_server_binaries()
    server: Server = RedisServer(tmp_path) if request.param == "redis" else MemcachedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _config(server: Server) -> dict[str, Any]:
    if isinstance(server, RedisServer):
        return {"type": "redis", "url": server.url, "prefix": "f:", "timeout": _TIMEOUT}
    return {"type": "memcached", "servers": [server.address], "prefix": "f:", "timeout": _TIMEOUT}


async def _until_it_works(store: RemoteStore) -> None:
    """Retry a write until the restarted server takes it (bounded: a hang fails the test)."""
    with anyio.fail_after(_RECOVERY_LIMIT):
        while True:
            try:
                await store.set("after", b"2", tags=["t"])
            except StoreUnavailableError:
                await anyio.sleep(0.1)
            else:
                break
    assert await store.get("after") == b"2"


async def test_server_killed_mid_operation(private_server: Server) -> None:
    async with make_store(_config(private_server)) as store:
        await store.set("k", b"1")
        failures: list[StoreUnavailableError] = []
        started = anyio.Event()

        async def hammer(n: int) -> None:
            # Any exception other than StoreUnavailableError escapes and fails the test.
            while True:
                try:
                    await store.set(f"k{n}", b"x", tags=["t"])
                    await store.get_many(["k", f"k{n}"])
                except StoreUnavailableError as error:
                    failures.append(error)
                    return
                started.set()

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(hammer, n)
            await started.wait()
            await anyio.to_thread.run_sync(private_server.kill)
        assert len(failures) == 8
        assert {failure.store for failure in failures} == {failures[0].store}
        with pytest.raises(StoreUnavailableError):
            await store.get("k")
        with pytest.raises(StoreUnavailableError):
            await store.ping()

        await anyio.to_thread.run_sync(private_server.start)
        await _until_it_works(store)


async def test_hung_server_times_out_then_recovers(private_server: Server) -> None:
    async with make_store(_config(private_server)) as store:
        await store.set("k", b"1")
        private_server.pause()
        try:
            with pytest.raises(StoreUnavailableError, match="get"):
                await store.get("k")
            # The store's own error, never an ExceptionGroup (a store fans some calls out).
            with pytest.raises(StoreUnavailableError):
                await store.invalidate_tags(["t"])
        finally:
            private_server.resume()
        await _until_it_works(store)
        assert await store.get("k") == b"1"


def test_redis_error_replies_that_mean_an_outage_are_told_from_refusals() -> None:
    from rgruntime.stores.redis import _transient

    for reply in (
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script",
        "An error was signalled by the server: - ResponseError: READONLY You can't write",
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "MASTERDOWN Link with MASTER is down",
        # As valkey-glide words them (its own kinds, not Redis' codes): seen on a real server
        # turned replica.
        "An error was signalled by the server: - ReadOnly: You can't write against a read only "
        "replica.",
        "An error was signalled by the server: - MasterDown: Link with MASTER is down and "
        "replica-serve-stale-data is set to 'no'.",
        "An error was signalled by the server: - BusyLoadingError: Redis is loading",
        "An error was signalled by the server: - TryAgain: Multiple keys request",
        "An error was signalled by the server: - ClusterDown: The cluster is down",
        "Reached maximum inflight requests",
    ):
        assert _transient(reply), reply
    for reply in (
        "ERR value is not an integer or out of range",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "OOM command not allowed when used memory > 'maxmemory'",
        "ERR Error running script: attempt to compare nil with number",
    ):
        assert not _transient(reply), reply


async def test_unreachable_server_at_open() -> None:
    ensure_server_binaries()
    # A port nothing listens on (the server was stopped).
    server = MemcachedServer()
    redis_config = {"type": "redis", "url": f"redis://127.0.0.1:{server.port}", "timeout": _TIMEOUT}
    with pytest.raises(StoreUnavailableError, match="open"):
        async with make_store(redis_config):
            pass
    memcached = make_store({"type": "memcached", "servers": [server.address], "timeout": _TIMEOUT})
    async with memcached:
        with pytest.raises(StoreUnavailableError):
            await memcached.get("k")
        with pytest.raises(StoreUnavailableError):
            await memcached.ping()


async def test_subscription_outage_asks_near_caches_to_resync(tmp_path: Path) -> None:
    ensure_server_binaries()
    server = RedisServer(tmp_path)
    server.start()
    try:
        config = {"type": "redis", "url": server.url, "prefix": "f:", "timeout": _TIMEOUT}
        async with (
            make_store(config) as publisher,
            make_store(config) as subscriber,
            subscriber.invalidations() as stream,
        ):
            await publisher.publish_invalidation(keys=["before"])
            with anyio.fail_after(_RECOVERY_LIMIT):
                first = await anext(stream)
            assert first.keys == {"before"}
            await anyio.to_thread.run_sync(server.kill)
            # While the server is down, messages are lost: the stream notices...
            await anyio.sleep(2.5)
            await anyio.to_thread.run_sync(server.start)
            with anyio.fail_after(_RECOVERY_LIMIT):
                resync = await anext(stream)
            # ...and, once it is back, tells the near cache to drop everything.
            assert resync.resync
            assert resync.drops_everything
            # The subscription itself is back: later messages arrive again.
            with anyio.fail_after(_RECOVERY_LIMIT):
                while True:
                    await _until_it_works(publisher)
                    await publisher.publish_invalidation(keys=["after"])
                    with anyio.move_on_after(1):
                        message = await anext(stream)
                        assert message.keys == {"after"}
                        break
    finally:
        server.stop()


async def test_memcached_evicted_generation_is_a_miss_not_a_stale_hit(
    memcached_server: MemcachedServer,
) -> None:
    from pymemcache.client.base import Client

    from rgruntime.stores.memcached import MemcachedNames

    config = {"type": "memcached", "servers": [memcached_server.address], "prefix": "ev:"}
    async with make_store(config) as store:
        await store.set("tagged", b"1", tags=["products:phones"])
        await store.set("untagged", b"2")
        raw = Client(("127.0.0.1", memcached_server.port), default_noreply=False)
        try:
            # As if Memcached had evicted the stamp of an ancestor tag under memory pressure:
            # the entry cannot be proven fresh, so it is a miss.
            assert raw.delete(MemcachedNames("ev:").generation("products"))
        finally:
            raw.close()
        assert await store.get_many(["tagged", "untagged"]) == [None, b"2"]
        # Written again, it gets the new stamp and is live.
        await store.set("tagged", b"3", tags=["products:phones"])
        assert await store.get("tagged") == b"3"
