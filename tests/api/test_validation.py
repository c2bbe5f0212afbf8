"""Bad requests get a 4xx naming the field; nothing cached changes because of them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from rgruntime import ResonantGenesis
from rgruntime.api import create_app
from rgruntime.api.bodies import MAX_BODY_BYTES
from tests.api.conftest import ADMIN, AGENT, bearer, tokens

pytestmark = pytest.mark.anyio

ADMIN_HEADERS = bearer(ADMIN)


async def _cached(client: ResonantGenesis) -> list[str]:
    await client.sessions.execute(agent_id=AGENT, goal="What are your hours?")
    return sorted(client.runtime.layer("response").keys())


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/cache/invalidate", {}, "body"),
        ("/api/v1/cache/invalidate", {"pattern": 7}, "pattern"),
        ("/api/v1/cache/invalidate", {"tags": "products"}, "tags"),
        ("/api/v1/cache/invalidate", {"tags": ["ok", ""]}, "tags[1]"),
        ("/api/v1/cache/invalidate", {"pattern": "x" * 2000}, "pattern"),
        ("/api/v1/cache/invalidate", {"pattern": "a\x00b"}, "pattern"),
        ("/api/v1/cache/invalidate", {"everything": True}, "everything"),
        ("/api/v1/cache/invalidate", {"agent_id": "no such agent!"}, "agent_id"),
        ("/api/v1/cache/invalidate", {"agent_id": AGENT, "pattern": "*"}, "agent_id"),
        ("/api/v1/cache/invalidate", [1, 2], "body"),
        ("/api/v1/cache/warm", {"goals": ["hi"]}, "agent_id"),
        ("/api/v1/cache/warm", {"agent_id": AGENT}, "goals"),
        ("/api/v1/cache/warm", {"agent_id": AGENT, "goals": []}, "goals"),
        (
            "/api/v1/cache/warm",
            {"agent_id": AGENT, "goals": ["a"], "concurrency": 0},
            "concurrency",
        ),
        (
            "/api/v1/cache/warm",
            {"agent_id": AGENT, "goals": ["a"], "concurrency": True},
            "concurrency",
        ),
        ("/api/v1/cache/warm", {"agent_id": AGENT, "goals": ["a"], "cache_ttl": -5}, "cache_ttl"),
        (
            "/api/v1/cache/warm",
            {"agent_id": AGENT, "goals": ["a"], "cache_ttl": "soon"},
            "cache_ttl",
        ),
        ("/api/v1/cache/warm", {"agent_id": AGENT, "goals": ["a"], "cache_ttl": [1]}, "cache_ttl"),
    ],
)
async def test_bad_bodies_name_the_field(
    http: httpx.AsyncClient, client: ResonantGenesis, path: str, body: Any, field: str
) -> None:
    before = await _cached(client)
    answer = await http.post(path, json=body, headers=ADMIN_HEADERS)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert field.split("[", maxsplit=1)[0] in answer.json()["message"]
    assert sorted(client.runtime.layer("response").keys()) == before
    assert client.cache.get_stats().invalidations == 0


async def test_unknown_agent_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/v1/cache/warm", json={"agent_id": "nobody", "goals": ["a"]}, headers=ADMIN_HEADERS
    )
    assert answer.status_code == 404
    assert answer.json()["field"] == "agent_id"


async def test_not_json_is_422(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/v1/cache/invalidate", content=b"{not json", headers=ADMIN_HEADERS
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "body"


async def test_large_bodies_are_refused_announced_or_not(
    http: httpx.AsyncClient, client: ResonantGenesis
) -> None:
    big = b'{"tags": ["' + b"x" * MAX_BODY_BYTES + b'"]}'
    announced = await http.post("/api/v1/cache/invalidate", content=big, headers=ADMIN_HEADERS)
    assert announced.status_code == 413

    # Streamed without Content-Length, straight through ASGI (httpx would wrap a stream in an
    # async generator, which trio reports when the server stops reading it half-way).
    huge = big * 3
    parts = [huge[start : start + 65536] for start in range(0, len(huge), 65536)]
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        body = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/cache/invalidate",
        "raw_path": b"/api/v1/cache/invalidate", "query_string": b"", "root_path": "",
        "headers": [(b"authorization", f"Bearer {ADMIN}".encode())],
        "client": ("127.0.0.1", 1), "server": ("api", 80),
    }  # fmt: skip
    await create_app(client, tokens())(scope, receive, send)
    assert messages[0]["status"] == 413
    assert parts, "the server stopped reading at the limit"


async def test_keys_stay_inside_their_layer(
    http: httpx.AsyncClient, client: ResonantGenesis
) -> None:
    keys = await _cached(client)
    session_key = "session:" + "x"
    await client.runtime.layer("session").set(session_key, {"secret": 1})
    # A session key asked of the response layer (the default) is refused, not looked up.
    for method in ("GET", "DELETE"):
        answer = await http.request(method, f"/api/v1/cache/{session_key}", headers=ADMIN_HEADERS)
        assert answer.status_code == 422
        assert answer.json()["field"] == "key"
    # Traversal-looking and escaped keys are keys: they match nothing outside the layer.
    for key in ("response:../session:x", quote("response:%2e%2e/session:x", safe="")):
        answer = await http.get(f"/api/v1/cache/{key}", headers=ADMIN_HEADERS)
        assert answer.status_code == 404
    answer = await http.get(f"/api/v1/cache/{keys[0]}?layer=nolayer", headers=ADMIN_HEADERS)
    assert answer.status_code == 422
    assert answer.json()["field"] == "layer"
    assert await client.runtime.layer("session").get(session_key) == {"secret": 1}
    assert sorted(client.runtime.layer("response").keys()) == keys


async def test_a_key_with_slashes_and_spaces_round_trips(
    http: httpx.AsyncClient, client: ResonantGenesis
) -> None:
    key = "response:a/b c?d#e"
    await client.runtime.layer("response").set(key, "value")
    url = f"/api/v1/cache/{quote(key, safe='')}"
    answer = await http.get(url, headers=ADMIN_HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["key"] == key
    assert answer.json()["value"] == "value"
    assert (await http.delete(url, headers=ADMIN_HEADERS)).status_code == 200
    assert key not in client.runtime.layer("response")


async def test_control_characters_in_keys_are_422(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/v1/cache/response:a%00b", headers=ADMIN_HEADERS)
    assert answer.status_code == 422
    assert answer.json()["field"] == "key"


async def test_over_long_urls_are_414(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/v1/cache/response:" + "x" * 17000, headers=ADMIN_HEADERS)
    assert answer.status_code == 414


async def test_every_answer_is_json_even_the_routers_own(http: httpx.AsyncClient) -> None:
    # A key with a raw newline matches no route: the router's 404 was text/plain (found by the
    # fuzzer: an answer the OpenAPI document does not declare).
    for path in ("/api/v1/cache/response:a%0A%0E", "/api/v1/nothing-here"):
        answer = await http.delete(path, headers=ADMIN_HEADERS)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] == "not_found"
    answer = await http.put("/api/v1/cache/stats", headers=ADMIN_HEADERS)
    assert answer.status_code == 405
    assert answer.json()["error"] == "method_not_allowed"
