"""The served OpenAPI document describes exactly the app's routes, methods and parameters."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Route

from rgruntime import ResonantGenesis
from rgruntime.api import create_app, document
from tests.api.conftest import READ, bearer, tokens

pytestmark = pytest.mark.anyio


def _routes_of(client: ResonantGenesis) -> set[tuple[str, str]]:
    app = create_app(client, tokens())
    found = set()
    for route in app.routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        found |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return found


async def test_the_document_matches_the_routes(
    http: httpx.AsyncClient, client: ResonantGenesis
) -> None:
    served = (await http.get("/openapi.json", headers=bearer(READ))).json()
    assert served == document(secured=True)
    documented = {
        (method.upper(), path) for path, item in served["paths"].items() for method in item
    }
    assert documented == _routes_of(client)
    for path, item in served["paths"].items():
        for operation in item.values():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path))
            assert {"401", "403"} <= set(operation["responses"])
            for reference in re.findall(
                r'"\$ref": "#/components/schemas/(\w+)"', str(operation).replace("'", '"')
            ):
                assert reference in served["components"]["schemas"]


async def test_the_guide_endpoints_are_documented(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json", headers=bearer(READ))).json()["paths"]
    assert set(paths["/api/v1/cache/{key}"]) == {"get", "delete"}
    assert "get" in paths["/api/v1/cache/stats"]
    assert "post" in paths["/api/v1/cache/invalidate"]
    assert "post" in paths["/api/v1/cache/warm"]


def test_an_open_server_documents_no_security() -> None:
    for item in document(secured=False)["paths"].values():
        for operation in item.values():
            assert "security" not in operation
            assert "401" not in operation["responses"]
