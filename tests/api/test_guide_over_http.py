"""Every call of the guide's API Reference, made with httpx against ``rgruntime serve`` on both
backends, answers with the guide's figures (its stats names: hit_rate, miss_rate, entry_count,
memory_usage, eviction_count)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.api.conftest import ADMIN, AGENT, READ, bearer
from tests.api.served import rgruntime_serve

GOALS = ["What are your business hours?", "How do I reset my password?"]


@pytest.fixture(params=["asyncio", "trio"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with rgruntime_serve(request.param) as served:
        yield served


def test_the_guides_api_reference(url: str) -> None:
    with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=30) as http:
        # POST /api/v1/cache/warm
        warmed = http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": GOALS})
        assert warmed.status_code == 200, warmed.text
        assert warmed.json()["warmed"] == GOALS
        again = http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": GOALS}).json()
        assert again["already_cached"] == GOALS

        # GET /api/v1/cache/stats
        stats = http.get("/api/v1/cache/stats").json()
        response = stats["layers"]["response"]
        assert response["hits"] == 2
        assert response["misses"] == 2
        assert response["hit_rate"] == 50.0
        assert response["miss_rate"] == 50.0
        assert response["entry_count"] == 2
        assert stats["entry_count"] == stats["entries"] > 0
        assert stats["memory_usage"] == stats["size_bytes"] > 0
        assert stats["eviction_count"] == 0

        metrics = http.get("/metrics", headers=bearer(READ)).text
        assert 'rgruntime_cache_entries{layer="response"} 2' in metrics

        # POST /api/v1/cache/invalidate: the guide's three forms
        one = http.post("/api/v1/cache/invalidate", json={"agent_id": AGENT, "key": GOALS[0]})
        # The answer, and the model output its run wrote (which carries the same goal tag).
        assert one.json() == {"invalidated": 2}
        assert http.get("/api/v1/cache/stats").json()["layers"]["response"]["entries"] == 1
        by_pattern = http.post("/api/v1/cache/invalidate", json={"pattern": "weather_*"})
        assert by_pattern.json() == {"invalidated": 0}
        everything = http.post("/api/v1/cache/invalidate", json={"agent_id": AGENT}).json()
        assert everything["invalidated"] >= 1
        assert http.get("/api/v1/cache/stats").json()["layers"]["response"]["entries"] == 0


def test_get_and_delete_by_key(url: str) -> None:
    with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=30) as http:
        http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": GOALS[:1]})
        listed = http.get("/api/v1/layers/response/keys", params={"pattern": f"response:{AGENT}:*"})
        assert listed.json()["total"] == 1
        key = listed.json()["keys"][0]
        path = f"/api/v1/cache/{quote(key, safe='')}"

        # GET /api/v1/cache/{key}
        entry = http.get(path, headers=bearer(READ)).json()
        assert entry["key"] == key
        assert entry["layer"] == "response"
        assert isinstance(entry["value"]["output"], str)
        assert entry["value"]["output"]
        assert 0 < entry["ttl"] <= 3600

        # DELETE /api/v1/cache/{key}
        assert http.delete(path, headers=bearer(READ)).status_code == 403
        assert http.delete(path).json() == {"deleted": True, "key": key, "layer": "response"}
        assert http.get(path).status_code == 404
        assert http.delete(path).status_code == 404
