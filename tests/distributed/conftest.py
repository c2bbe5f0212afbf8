"""Real servers for the tests of many processes sharing one store (tests/servers.py): started
once per session when a test asks for one, stopped at its end; never skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import MemcachedServer, RedisServer, running_memcached, running_redis


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def shared_memcached() -> Iterator[MemcachedServer]:
    with running_memcached() as server:
        yield server
