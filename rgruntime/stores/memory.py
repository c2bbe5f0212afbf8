"""An in-process :class:`~rgruntime.stores.RemoteStore`: the reference the contract tests hold the
remote stores to, and a stand-in for them in tests of what sits on top (near caches, layers).

Several :class:`MemoryStore` objects sharing one :class:`MemoryServer` behave like processes
sharing a Redis server: same entries, same leases, invalidations published by one reach the
others' subscriptions. Time is ``anyio.current_time()`` (virtual time in tests). A change
applies when it is called and its answer comes a scheduling round later, as a server applies
requests in the order they are sent: concurrent changes land in the order they were called.
"""

from __future__ import annotations

import fnmatch
import math
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rgruntime.stores.base import CAPABILITIES, Invalidation
from rgruntime.stores.errors import StoreUnavailableError
from rgruntime.stores.lifetime import OpenedOnce
from rgruntime.stores.validation import (
    TAG_SEPARATOR,
    check_key,
    check_keys,
    check_lease_ttl,
    check_tag_list,
    check_ttl,
    check_write,
)

__all__ = ["MemoryServer", "MemoryStore"]

#: Messages a subscription buffers; beyond that it is told to resync (as a lossy channel would).
_SUBSCRIPTION_BUFFER: Final = 1024


class _Item:
    __slots__ = ("deadline", "tags", "value")

    def __init__(self, value: bytes, deadline: float, tags: frozenset[str]) -> None:
        self.value = value
        self.deadline = deadline
        self.tags = tags


class _Subscription:
    __slots__ = ("lost", "send")

    def __init__(self, send: MemoryObjectSendStream[Invalidation]) -> None:
        self.send = send
        self.lost = False


class _Messages:
    """The messages of one subscription (a plain iterator: nothing to finalize if abandoned)."""

    __slots__ = ("_receive", "_subscription")

    def __init__(
        self, subscription: _Subscription, receive: MemoryObjectReceiveStream[Invalidation]
    ) -> None:
        self._subscription = subscription
        self._receive = receive

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Invalidation:
        if self._subscription.lost:
            self._subscription.lost = False
            return Invalidation(resync=True)
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class MemoryServer:
    """What a Redis server would hold, for :class:`MemoryStore` objects that share it."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], _Item] = {}
        self.leases: dict[tuple[str, str], tuple[str, float]] = {}
        self.edges: dict[tuple[str, str], set[str]] = {}
        self.subscriptions: dict[str, set[_Subscription]] = {}


class MemoryStore(OpenedOnce):
    """A store in this process's memory, with the semantics of the Redis store."""

    kind = "memory"
    capabilities: frozenset[str] = CAPABILITIES

    def __init__(self, *, prefix: str = "rg:", server: MemoryServer | None = None) -> None:
        self.prefix = prefix
        self.instance_id = secrets.token_hex(8)
        self._server = server if server is not None else MemoryServer()
        self._open = False
        self._description = f"memory prefix {prefix!r}"

    async def __aenter__(self) -> Self:
        self._open_once()
        self._open = True
        return self

    async def aclose(self) -> None:
        self._open = False

    def _check_open(self, operation: str) -> None:
        if not self._open:
            raise StoreUnavailableError(self._description, operation, "not open")

    def _live(self, key: str) -> _Item | None:
        item = self._server.entries.get((self.prefix, key))
        if item is not None and anyio.current_time() >= item.deadline:
            del self._server.entries[(self.prefix, key)]
            return None
        return item

    async def ping(self) -> float:
        self._check_open("ping")
        await anyio.lowlevel.checkpoint()
        return 0.0

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([check_key(key)]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked = check_keys(keys)
        self._check_open("get")
        await anyio.lowlevel.checkpoint()
        items = [self._live(key) for key in checked]
        return [None if item is None else item.value for item in items]

    async def set(
        self, key: str, envelope: bytes, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        key, envelope, checked_ttl, tag_list = check_write(key, envelope, ttl, tags)
        tag_set = frozenset(tag_list)
        self._check_open("set")
        deadline = math.inf if checked_ttl is None else anyio.current_time() + checked_ttl
        self._server.entries[(self.prefix, key)] = _Item(envelope, deadline, tag_set)
        await anyio.lowlevel.checkpoint()  # the answer (changes apply in call order)

    async def delete(self, keys: Iterable[str]) -> int:
        checked = list(dict.fromkeys(check_keys(keys)))
        self._check_open("delete")
        removed = 0
        for key in checked:
            if self._live(key) is not None:
                del self._server.entries[(self.prefix, key)]
                removed += 1
        await anyio.lowlevel.checkpoint()
        return removed

    async def invalidate_tags(self, tags: Iterable[str]) -> Sequence[str] | None:
        wanted = check_tag_list(tags)
        self._check_open("invalidate_tags")
        removed = [
            key
            for (prefix, key), item in list(self._server.entries.items())
            if prefix == self.prefix
            and any(
                tag == each or tag.startswith(each + TAG_SEPARATOR)
                for tag in item.tags
                for each in wanted
            )
            and self._live(key) is not None
        ]
        for key in removed:
            del self._server.entries[(self.prefix, key)]
        await anyio.lowlevel.checkpoint()
        return removed

    async def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        pattern = check_key(pattern, "pattern")
        self._check_open("scan")
        await anyio.lowlevel.checkpoint()
        keys = [key for prefix, key in list(self._server.entries) if prefix == self.prefix]
        for key in keys:
            if fnmatch.fnmatchcase(key, pattern) and self._live(key) is not None:
                yield key

    async def clear(self) -> None:
        self._check_open("clear")
        for table in (self._server.entries, self._server.edges):
            for name in [name for name in table if name[0] == self.prefix]:
                del table[name]
        await anyio.lowlevel.checkpoint()

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        key = check_key(key)
        checked = check_lease_ttl(ttl)
        self._check_open("acquire_lease")
        await anyio.lowlevel.checkpoint()
        now = anyio.current_time()
        held = self._server.leases.get((self.prefix, key))
        if held is not None and now < held[1]:
            return None
        token = secrets.token_hex(16)
        self._server.leases[(self.prefix, key)] = (token, now + checked)
        return token

    async def release_lease(self, key: str, token: str) -> bool:
        key = check_key(key)
        self._check_open("release_lease")
        await anyio.lowlevel.checkpoint()
        held = self._server.leases.get((self.prefix, key))
        if held is None or held[0] != token or anyio.current_time() >= held[1]:
            return False
        del self._server.leases[(self.prefix, key)]
        return True

    async def lease_active(self, key: str) -> bool:
        key = check_key(key)
        self._check_open("lease_active")
        await anyio.lowlevel.checkpoint()
        held = self._server.leases.get((self.prefix, key))
        return held is not None and anyio.current_time() < held[1]

    async def publish_invalidation(
        self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), clear: bool = False
    ) -> None:
        message = Invalidation(
            keys=frozenset(check_keys(keys)),
            tags=frozenset(check_tag_list(tags)),
            clear=clear,
            origin=self.instance_id,
        )
        self._check_open("publish_invalidation")
        await anyio.lowlevel.checkpoint()
        for subscription in list(self._server.subscriptions.get(self.prefix, ())):
            try:
                subscription.send.send_nowait(message)
            except anyio.WouldBlock:
                subscription.lost = True

    def invalidations(self) -> AbstractAsyncContextManager[AsyncIterator[Invalidation]]:
        return self._subscription()

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[Invalidation]]:
        self._check_open("invalidations")
        send, receive = anyio.create_memory_object_stream[Invalidation](_SUBSCRIPTION_BUFFER)
        subscription = _Subscription(send)
        subscribers = self._server.subscriptions.setdefault(self.prefix, set())
        subscribers.add(subscription)

        try:
            yield _Messages(subscription, receive)
        finally:
            subscribers.discard(subscription)
            send.close()
            receive.close()

    async def add_edges(
        self, dependent: str, dependencies: Iterable[str], *, ttl: float | None = None
    ) -> None:
        dependent = check_key(dependent, "dependent")
        checked = check_keys(dependencies, "dependencies")
        check_ttl(ttl)  # edges here live until clear(): a reference, not a cache
        self._check_open("add_edges")
        for dependency in checked:
            self._server.edges.setdefault((self.prefix, dependency), set()).add(dependent)
        await anyio.lowlevel.checkpoint()

    async def dependents_of(self, key: str) -> frozenset[str]:
        key = check_key(key)
        self._check_open("dependents_of")
        await anyio.lowlevel.checkpoint()
        return frozenset(self._server.edges.get((self.prefix, key), ()))
