"""An open client with one agent, and the API over it in process (httpx's ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import httpx
import pytest

from rgruntime import ResonantGenesis
from rgruntime.api import Token, TokenSet, create_app
from rgruntime.providers import SimulatedProvider

READ: Final = "read-token-0123456789"
ADMIN: Final = "admin-token-0123456789"
AGENT: Final = "support_agent"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tokens() -> TokenSet:
    return TokenSet([Token(READ, "read"), Token(ADMIN, "admin")])


@pytest.fixture
async def client(anyio_backend: object) -> AsyncIterator[ResonantGenesis]:
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as opened:
        await opened.agents.create("Support", agent_id=AGENT)
        yield opened


@pytest.fixture
async def http(client: ResonantGenesis) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(client, tokens()))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as opened:
        yield opened
