"""Fixtures of the store tests: real servers (session-wide) and a store of each kind per test.

The servers are child processes on free loopback ports (tests/servers.py), started once per test
session and stopped at its end (their fixtures are in tests/conftest.py). A missing binary is
installed, or the session fails: these tests never skip. Each test gets its own key prefix, so
tests sharing a server cannot see each other's keys (and clear() is tested not to reach beyond
its prefix).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest

from rgruntime.stores import MemoryServer, MemoryStore, RemoteStore, make_store
from tests.servers import MemcachedServer, RedisClusterServers, RedisServer

#: Every kind of store the contract suite runs against.
STORE_KINDS: Final = ("memory", "redis", "redis_cluster", "memcached")

_prefixes = itertools.count()


class StoreFactory:
    """Configurations of one kind of store on the session's server, and stores built from them.

    Two stores from one factory with the same prefix see the same entries: two processes.
    """

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._request = request
        self._memory = MemoryServer()
        # The counter alone is not unique on the session's shared servers: tests/remote imports
        # this module again under another name (tests/stores has no __init__.py), with a counter
        # of its own.
        self.prefix = f"t{next(_prefixes)}-{secrets.token_hex(3)}:"

    def config(self, prefix: str | None = None, **options: Any) -> dict[str, Any]:
        prefix = self.prefix if prefix is None else prefix
        if self.kind == "redis":
            server: RedisServer = self._request.getfixturevalue("redis_server")
            return {"type": "redis", "url": server.url, "db": 0, "prefix": prefix, **options}
        if self.kind == "redis_cluster":
            cluster: RedisClusterServers = self._request.getfixturevalue("redis_cluster")
            return {
                "type": "redis_cluster",
                "nodes": cluster.urls,
                "read_from_replicas": True,
                "prefix": prefix,
                **options,
            }
        if self.kind == "memcached":
            memcached: MemcachedServer = self._request.getfixturevalue("memcached_server")
            return {
                "type": "memcached",
                "servers": [memcached.address],
                "prefix": prefix,
                **options,
            }
        return {"type": "memory", "prefix": prefix, **options}

    def make(self, prefix: str | None = None, **options: Any) -> RemoteStore:
        if self.kind == "memory":
            return MemoryStore(
                prefix=self.prefix if prefix is None else prefix, server=self._memory
            )
        return make_store(self.config(prefix, **options))


@pytest.fixture(params=STORE_KINDS)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    return StoreFactory(request.param, request)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[RemoteStore]:
    async with store_factory.make() as opened:
        yield opened
