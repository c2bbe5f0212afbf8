"""runtime.serve_api: the API over a bare runtime (no guide client), on both backends."""

from __future__ import annotations

import httpx
import pytest

import rgruntime
from rgruntime.errors import ConfigError, RuntimeClosedError
from tests.api.conftest import ADMIN, READ, bearer

pytestmark = pytest.mark.anyio


async def test_a_bare_runtime_serves_its_entries(anyio_backend: object) -> None:
    async with rgruntime.open_runtime({"layers": {"embeddings": {}}}) as runtime:
        tools = runtime.layer("tool")
        await tools.set("tool:weather", {"temp": 17}, tags=["weather"])
        await runtime.layer("embeddings").set("e1", [0.1, 0.2])
        server = await runtime.serve_api(port=0, tokens={READ: "read", ADMIN: "admin"})
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).status_code == 401
            read, admin = bearer(READ), bearer(ADMIN)
            health = (await http.get("/healthz", headers=read)).json()
            assert "embeddings" in health["layers"]
            entry = await http.get(
                "/api/v1/cache/tool:weather", params={"layer": "tool"}, headers=read
            )
            assert entry.json()["value"] == {"temp": 17}
            keys = await http.get("/api/v1/layers/embeddings/keys", headers=read)
            assert keys.json()["keys"] == ["e1"]
            stats = (await http.get("/api/v1/cache/stats", headers=read)).json()
            assert stats["layers"]["tool"]["entries"] == 1
            assert "rgruntime" in (await http.get("/metrics", headers=read)).text
            # Writes need the admin token, as on the client's server.
            denied = await http.post(
                "/api/v1/cache/invalidate", json={"tags": ["weather"]}, headers=read
            )
            assert denied.status_code == 403
            done = await http.post(
                "/api/v1/cache/invalidate", json={"tags": ["weather"]}, headers=admin
            )
            assert done.json() == {"invalidated": 1}
            assert await tools.get("tool:weather") is None
            deleted = await http.delete(
                "/api/v1/cache/e1", params={"layer": "embeddings"}, headers=admin
            )
            assert deleted.json()["deleted"] is True


async def test_what_needs_the_client_says_so(anyio_backend: object) -> None:
    async with rgruntime.open_runtime() as runtime:
        server = await runtime.serve_api(port=0)
        async with httpx.AsyncClient(base_url=server.url) as http:
            by_agent = await http.post("/api/v1/cache/invalidate", json={"agent_id": "a1"})
            assert by_agent.status_code == 422
            assert by_agent.json()["field"] == "agent_id"
            warm = await http.post(
                "/api/v1/cache/warm", json={"agent_id": "a1", "goals": ["Hours?"]}
            )
            assert warm.status_code == 404
            for path in ("/api/v1/savings", "/api/v1/analyze", "/api/v1/alerts"):
                answer = await http.get(path)
                assert answer.status_code == 501, path
                assert answer.json()["error"] == "not_implemented"


async def test_a_closed_runtime_serves_nothing(anyio_backend: object) -> None:
    runtime = rgruntime.open_runtime()
    with pytest.raises(RuntimeClosedError):
        await runtime.serve_api(port=0)
    async with runtime:
        with pytest.raises(ConfigError, match="loopback"):
            await runtime.serve_api(host="0.0.0.0", port=0)
