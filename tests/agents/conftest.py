"""Fixtures of the client tests: an open client whose model is a counting SimulatedProvider.

Async tests run on asyncio and trio through the top-level ``anyio_backend`` fixture; modules
that mark themselves ``virtual_time`` run on autojump clocks, so model latency and TTLs of hours
take no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider

#: Virtual seconds each model call takes: long enough for concurrent requests to overlap.
MODEL_LATENCY = 1.0


@pytest.fixture
def provider() -> SimulatedProvider:
    return SimulatedProvider(latency=MODEL_LATENCY)


@pytest.fixture
async def client(provider: SimulatedProvider) -> AsyncIterator[ResonantGenesis]:
    async with ResonantGenesis(api_key="your_key", provider=provider) as opened:
        yield opened
