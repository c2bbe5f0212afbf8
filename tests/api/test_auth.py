"""Every route with no token, a wrong one, a read token and an admin token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rgruntime import ResonantGenesis
from rgruntime.api.auth import TokenSet
from rgruntime.api.features import has_feature
from rgruntime.api.table import ROUTES, ApiRoute
from rgruntime.errors import ConfigError
from tests.api.conftest import ADMIN, AGENT, READ, bearer

pytestmark = pytest.mark.anyio

#: Requests that succeed for an allowed token (the entry routes need a cached entry).
BODIES: dict[str, Any] = {
    "/api/v1/cache/invalidate": {"pattern": "weather_*"},
    "/api/v1/cache/warm": {"agent_id": AGENT, "goals": ["What are your hours?"]},
}


def _allowed(client: ResonantGenesis, route: ApiRoute) -> int:
    """The status of an allowed call: routes of "Operations, part 1" answer 501 until those
    client methods exist (features.py), then 200."""
    return 501 if route.feature and not has_feature(client, route.feature) else 200


async def _call(
    http: httpx.AsyncClient, client: ResonantGenesis, route: ApiRoute, headers: dict[str, str]
) -> httpx.Response:
    path = route.path
    if "{key}" in path:
        await client.sessions.execute(agent_id=AGENT, goal="What are your hours?")
        path = path.replace("{key}", client.runtime.layer("response").keys()[0])
    path = path.replace("{layer}", "response")
    return await http.request(route.method, path, json=BODIES.get(route.path), headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_no_token_is_401(
    http: httpx.AsyncClient, client: ResonantGenesis, route: ApiRoute
) -> None:
    answer = await _call(http, client, route, {})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    wrong = await _call(http, client, route, bearer("not-a-token-at-all-xx"))
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = await _call(http, client, route, {"Authorization": f"Basic {ADMIN}"})
    assert basic.status_code == 401


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_read_token(
    http: httpx.AsyncClient, client: ResonantGenesis, route: ApiRoute
) -> None:
    answer = await _call(http, client, route, bearer(READ))
    if route.scope == "admin":
        assert answer.status_code == 403
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    else:
        assert answer.status_code == _allowed(client, route), answer.text


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_admin_token(
    http: httpx.AsyncClient, client: ResonantGenesis, route: ApiRoute
) -> None:
    answer = await _call(http, client, route, bearer(ADMIN))
    assert answer.status_code == _allowed(client, route), answer.text


async def test_a_read_token_changes_nothing(
    http: httpx.AsyncClient, client: ResonantGenesis
) -> None:
    await client.sessions.execute(agent_id=AGENT, goal="What are your hours?")
    keys = client.runtime.layer("response").keys()
    refused = [
        await http.delete(f"/api/v1/cache/{keys[0]}", headers=bearer(READ)),
        await http.post("/api/v1/cache/invalidate", json={"pattern": "*"}, headers=bearer(READ)),
    ]
    assert [answer.status_code for answer in refused] == [403, 403]
    assert client.runtime.layer("response").keys() == keys


async def test_unknown_paths_need_a_token_too(http: httpx.AsyncClient) -> None:
    assert (await http.get("/no/such/route")).status_code == 401
    assert (await http.get("/no/such/route", headers=bearer(READ))).status_code == 404


async def test_the_clients_api_key_is_an_admin_token(anyio_backend: object) -> None:
    async with ResonantGenesis(api_key="your_key") as client:
        server = await client.serve_api(port=0)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).status_code == 401
            answer = await http.post(
                "/api/v1/cache/invalidate", json={"tags": ["x"]}, headers=bearer("your_key")
            )
            assert answer.status_code == 200


def test_short_and_malformed_tokens_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        TokenSet.of({"short": "admin"})
    with pytest.raises(ConfigError, match="'read' or 'admin'"):
        TokenSet.of({"x" * 20: "write"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="spaces"):
        TokenSet.of({"x" * 10 + " " + "y" * 10: "read"})


async def test_only_the_dashboard_takes_a_token_from_its_url(http: httpx.AsyncClient) -> None:
    page = await http.get("/dashboard", params={"token": READ})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script src" not in page.text  # nothing loaded from elsewhere
    assert (
        await http.get("/dashboard", params={"token": "wrong-token-0123456789"})
    ).status_code == 401
    assert (await http.get("/dashboard")).status_code == 401
    stats = await http.get("/api/v1/cache/stats", params={"token": READ})
    assert stats.status_code == 401
