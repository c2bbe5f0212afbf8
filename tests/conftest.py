"""Every async test runs twice, on asyncio and on trio, through anyio's pytest plugin.

Mark a test (or a module, with ``pytestmark``) ``virtual_time`` to run both on autojump virtual
clocks instead (see ``tests/support.py``). Real clocks stay the default so that the fast clock
paths a runtime resolves on the standard loops (``time.monotonic``, trio's ``SystemClock``) are
exercised too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import (
    MemcachedServer,
    RedisClusterServers,
    RedisServer,
    running_memcached,
    running_redis,
    running_redis_cluster,
)
from tests.support import BACKENDS, virtual_time_backend


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "virtual_time: run this anyio test on virtual clocks (trio MockClock with autojump, "
        "looptime on asyncio)",
    )


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    # Function scope: every virtual-time test gets a fresh clock starting at 0.
    if request.node.get_closest_marker("virtual_time") is not None:
        return virtual_time_backend(request.param)
    return request.param


# -- real servers, started once per test session when a test asks for one (tests/servers.py) --


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    with running_redis_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    with running_memcached() as server:
        yield server
