"""Coalesced publications on Redis (RedisStore.publish_invalidation): concurrent callers share
messages, every invalidation still reaches the subscribers, and a failure reaches every caller
whose invalidation it carried. Concurrent writes, sent as one script (stores/coalescing.py),
publish every key they wrote, and a failed batch fails every caller in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from rgruntime.stores import Invalidation, RemoteStore, StoreUnavailableError, make_store
from tests.servers import RedisServer, ensure_server_binaries

pytestmark = pytest.mark.anyio

_CALLERS = 50


@asynccontextmanager
async def _publisher_and_stream(
    server: RedisServer, prefix: str
) -> AsyncIterator[tuple[RemoteStore, AsyncIterator[Invalidation]]]:
    """A store that publishes, and the invalidations another store (process) hears."""
    config = {"type": "redis", "url": server.url, "prefix": prefix}
    async with (
        make_store(config) as publisher,
        make_store(config) as subscriber,
        subscriber.invalidations() as stream,
    ):
        yield publisher, stream


async def _messages_until_clear(stream: AsyncIterator[Invalidation]) -> list[Invalidation]:
    received: list[Invalidation] = []
    with anyio.fail_after(10):
        async for message in stream:
            if message.clear:
                return received
            received.append(message)
    raise AssertionError("the stream ended")


async def test_concurrent_publications_are_coalesced_and_all_delivered(
    redis_server: RedisServer,
) -> None:
    async with _publisher_and_stream(redis_server, "pub:") as (publisher, stream):
        returned: list[int] = []

        async def publish(n: int) -> None:
            await publisher.publish_invalidation(keys=[f"k{n}"], tags=[f"t{n % 3}"])
            returned.append(n)

        async with anyio.create_task_group() as group:
            for n in range(_CALLERS):
                group.start_soon(publish, n)
        await publisher.publish_invalidation(clear=True)
        assert sorted(returned) == list(range(_CALLERS))
        received = await _messages_until_clear(stream)
    keys = set().union(*(message.keys for message in received))
    tags = set().union(*(message.tags for message in received))
    assert keys == {f"k{n}" for n in range(_CALLERS)}
    assert tags == {"t0", "t1", "t2"}
    # Fewer messages than callers: the ones that arrived while a message was in flight shared
    # the next one.
    assert len(received) < _CALLERS
    assert all(message.origin == publisher.instance_id for message in received)


@asynccontextmanager
async def _frozen_store(tmp_path: Path, prefix: str) -> AsyncIterator[RemoteStore]:
    """A store on a server of its own, frozen (SIGSTOP) once the store has been used."""
    ensure_server_binaries()
    server = RedisServer(tmp_path)
    server.start()
    try:
        config = {"type": "redis", "url": server.url, "prefix": prefix, "timeout": 0.5}
        async with make_store(config) as store:
            await store.set("before", b"1")
            server.pause()
            try:
                yield store
            finally:
                server.resume()
            assert await store.get("before") == b"1"
    finally:
        server.stop()


async def _failures(
    callers: int, call: Callable[[int], Awaitable[object]]
) -> list[StoreUnavailableError]:
    """What ``callers`` concurrent ``call(n)`` raised: each must fail, none may wait forever."""
    failures: list[StoreUnavailableError] = []

    async def caller(n: int) -> None:
        try:
            await call(n)
        except StoreUnavailableError as error:
            failures.append(error)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for n in range(callers):
                group.start_soon(caller, n)
    assert len(failures) == callers
    assert len({id(failure) for failure in failures}) == callers  # each its own error
    return failures


async def test_a_failed_publication_fails_every_caller_it_carried(tmp_path: Path) -> None:
    async with _frozen_store(tmp_path, "pub:") as publisher:
        failures = await _failures(10, lambda n: publisher.publish_invalidation(keys=[f"k{n}"]))
    assert all("publish_invalidation" in str(failure) for failure in failures)


async def test_a_write_publishes_its_key_and_the_publish_after_it_sends_nothing_more(
    redis_server: RedisServer,
) -> None:
    async with _publisher_and_stream(redis_server, "pubw:") as (writer, stream):
        # What a layer does: write, then publish the key; one message, from the write itself.
        await writer.set("a", b"1", tags=["t"])
        await writer.publish_invalidation(keys=["a"])
        # A change in between (here a delete) makes the publish after it a message of its own.
        await writer.set("b", b"1")
        await writer.delete(["b"])
        await writer.publish_invalidation(keys=["b"])
        # Another task's publish of a key this task wrote is never skipped.
        written = anyio.Event()

        async def publish_c() -> None:
            await written.wait()
            await writer.publish_invalidation(keys=["c"])

        async with anyio.create_task_group() as group:
            group.start_soon(publish_c)
            await writer.set("c", b"1")
            written.set()
        # Nor one naming more than the key written.
        await writer.set("d", b"1")
        await writer.publish_invalidation(keys=["d", "e"])
        await writer.publish_invalidation(clear=True)
        received = await _messages_until_clear(stream)
    assert [set(message.keys) for message in received] == [
        {"a"},
        {"b"},
        {"b"},
        {"c"},
        {"c"},
        {"d"},
        {"d", "e"},
    ]
    assert all(message.origin == writer.instance_id for message in received)


async def test_concurrent_writes_publish_every_key_in_fewer_messages(
    redis_server: RedisServer,
) -> None:
    async with _publisher_and_stream(redis_server, "pubc:") as (writer, stream):
        keys = {f"k{n}" for n in range(_CALLERS)}
        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(lambda k=key: writer.set(k, b"v", tags=["t"]))
        await writer.publish_invalidation(clear=True)
        received = await _messages_until_clear(stream)
    assert set().union(*(message.keys for message in received)) == keys
    assert len(received) < _CALLERS  # writes of one round shared a script and its message
    assert all(message.origin == writer.instance_id for message in received)


async def test_a_failed_batch_fails_every_caller_in_it(tmp_path: Path) -> None:
    async with _frozen_store(tmp_path, "batch:") as store:
        failures = await _failures(
            20, lambda n: store.set(f"k{n}", b"1") if n % 2 else store.get(f"k{n}")
        )
    assert {failure.operation for failure in failures} == {"get", "set"}
