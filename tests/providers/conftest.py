"""Fixtures of the provider tests: every async test runs on asyncio and on trio."""

from __future__ import annotations

from typing import Any

import looptime
import pytest
import trio.testing


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def virtual_time_backend(name: str) -> tuple[str, dict[str, Any]]:
    """A backend whose clock jumps ahead whenever every task sleeps: trio's MockClock, and an
    asyncio loop patched by looptime. A fresh clock for each test."""
    if name == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": looptime.new_event_loop})
