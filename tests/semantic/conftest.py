"""Every async test of the semantic cache runs on asyncio and on trio (anyio's plugin, strict)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
