"""client.serve_api: a server in the runtime's task group, on both backends, gone with it."""

from __future__ import annotations

import httpx
import pytest

from rgruntime import ResonantGenesis
from rgruntime.api.auth import TokenSet
from rgruntime.api.server import check_bind
from rgruntime.errors import ConfigError, RuntimeClosedError
from tests.api.conftest import ADMIN, READ, bearer

pytestmark = pytest.mark.anyio


async def test_the_server_stops_with_the_client(anyio_backend: object) -> None:
    async with ResonantGenesis() as client:
        server = await client.serve_api(port=0, tokens={READ: "read", ADMIN: "admin"})
        async with httpx.AsyncClient(base_url=server.url) as http:
            answer = await http.get("/api/v1/cache/stats", headers=bearer(READ))
            assert answer.status_code == 200
            assert answer.json()["requests"] == 0
    # Closed: nothing listens on the port any more.
    async with httpx.AsyncClient(base_url=server.url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz", headers=bearer(READ))


async def test_two_servers_on_one_client(anyio_backend: object) -> None:
    async with ResonantGenesis() as client:
        first = await client.serve_api(port=0)
        second = await client.serve_api(port=0)
        assert first.port != second.port
        async with httpx.AsyncClient() as http:
            for server in (first, second):
                assert (await http.get(f"{server.url}/healthz")).status_code == 200


async def test_a_closed_client_serves_nothing(anyio_backend: object) -> None:
    client = ResonantGenesis()
    with pytest.raises(RuntimeClosedError):
        await client.serve_api(port=0)


async def test_a_taken_port_is_an_error_and_the_client_goes_on(anyio_backend: object) -> None:
    async with ResonantGenesis() as client:
        server = await client.serve_api(port=0)
        with pytest.raises(OSError, match="in use"):
            await client.serve_api(port=server.port)
        assert client.cache.get_stats().requests == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_no_public_address_without_tokens(host: str) -> None:
    with pytest.raises(ConfigError, match="loopback") as refused:
        check_bind(host, 8000, TokenSet())
    assert refused.value.field == "host"
    check_bind(host, 8000, TokenSet.of({ADMIN: "admin"}))  # with a token it may


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, 0, TokenSet())


@pytest.mark.parametrize("port", [-1, 65536, "80", True])
def test_bad_ports(port: object) -> None:
    with pytest.raises(ConfigError, match="port"):
        check_bind("127.0.0.1", port, TokenSet())  # type: ignore[arg-type]
