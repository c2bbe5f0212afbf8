"""Coalesced publications on Redis (RedisStore.publish_invalidation): concurrent callers share
messages, every invalidation still reaches the subscribers, and a failure reaches every caller
whose invalidation it carried."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from rgruntime.stores import Invalidation, StoreUnavailableError, make_store
from tests.servers import RedisServer, ensure_server_binaries

pytestmark = pytest.mark.anyio

_CALLERS = 50


async def test_concurrent_publications_are_coalesced_and_all_delivered(
    redis_server: RedisServer,
) -> None:
    config = {"type": "redis", "url": redis_server.url, "prefix": "pub:"}
    async with (
        make_store(config) as publisher,
        make_store(config) as subscriber,
        subscriber.invalidations() as stream,
    ):
        returned: list[int] = []

        async def publish(n: int) -> None:
            await publisher.publish_invalidation(keys=[f"k{n}"], tags=[f"t{n % 3}"])
            returned.append(n)

        async with anyio.create_task_group() as group:
            for n in range(_CALLERS):
                group.start_soon(publish, n)
        await publisher.publish_invalidation(clear=True)
        assert sorted(returned) == list(range(_CALLERS))
        received: list[Invalidation] = []
        with anyio.fail_after(10):
            async for message in stream:
                received.append(message)
                if message.clear:
                    break
    keys = set().union(*(message.keys for message in received))
    tags = set().union(*(message.tags for message in received))
    assert keys == {f"k{n}" for n in range(_CALLERS)}
    assert tags == {"t0", "t1", "t2"}
    # Fewer messages than callers: the ones that arrived while a message was in flight shared
    # the next one. The clear came after every other publication returned: a message of its own.
    assert len(received) - 1 < _CALLERS
    assert received[-1].keys == frozenset()
    assert all(message.origin == publisher.instance_id for message in received)


async def test_a_failed_publication_fails_every_caller_it_carried(tmp_path: Path) -> None:
    ensure_server_binaries()
    server = RedisServer(tmp_path)
    server.start()
    try:
        config = {"type": "redis", "url": server.url, "prefix": "pub:", "timeout": 0.5}
        async with make_store(config) as publisher:
            await publisher.publish_invalidation(keys=["before"])
            server.pause()
            failures: list[StoreUnavailableError] = []

            async def publish(n: int) -> None:
                try:
                    await publisher.publish_invalidation(keys=[f"k{n}"])
                except StoreUnavailableError as error:
                    failures.append(error)

            try:
                with anyio.fail_after(10):  # bounded: no caller waits forever
                    async with anyio.create_task_group() as group:
                        for n in range(10):
                            group.start_soon(publish, n)
            finally:
                server.resume()
            assert len(failures) == 10
            assert all("publish_invalidation" in str(failure) for failure in failures)
    finally:
        server.stop()
