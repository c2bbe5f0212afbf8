"""The route table: every route once, with its scope and its OpenAPI description. The app
(app.py) and the OpenAPI document (openapi.py) are both built from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
from starlette.requests import Request

from rgruntime.api import routes
from rgruntime.api.auth import Scope

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis

Handler = Callable[["ResonantGenesis", Request], Awaitable[Any]]

__all__ = ["ROUTES", "ApiRoute"]


@attrs.frozen(kw_only=True)
class ApiRoute:
    method: str
    #: The OpenAPI path (``{key}``); ``converter`` gives starlette's form of a parameter.
    path: str
    scope: Scope
    handler: Handler
    summary: str
    #: Component schema of the 200 answer (None: ``text`` content).
    answer: str | None
    body: str | None = None
    query: tuple[tuple[str, str, str], ...] = ()  # (name, description, default or "")
    converters: tuple[tuple[str, str], ...] = ()  # (parameter, starlette converter)
    errors: tuple[int, ...] = ()
    text: str | None = None  # media type of a text answer
    #: The "Operations, part 1" feature serving it (features.py): 501 while it is missing.
    feature: str | None = None

    @property
    def starlette_path(self) -> str:
        path = self.path
        for name, converter in self.converters:
            path = path.replace(f"{{{name}}}", f"{{{name}:{converter}}}")
        return path


_KEY = (("key", "path"),)
_LAYER = (("layer", "the layer holding the key", "response"),)

ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute(
        method="GET",
        path="/healthz",
        scope="read",
        handler=routes.health,
        summary="Liveness: the server and its runtime answer",
        answer="Health",
    ),
    ApiRoute(
        method="GET",
        path="/openapi.json",
        scope="read",
        handler=routes.openapi_document,
        summary="This document",
        answer="Record",
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/cache/stats",
        scope="read",
        handler=routes.cache_stats,
        summary="Cache statistics (client.cache.get_stats()), summed and per layer",
        answer="Stats",
    ),
    ApiRoute(
        method="POST",
        path="/api/v1/cache/invalidate",
        scope="admin",
        handler=routes.invalidate,
        body="InvalidateRequest",
        answer="InvalidateResult",
        summary="Invalidate by agent, key, pattern or tags (client.cache.invalidate)",
        errors=(413, 422),
    ),
    ApiRoute(
        method="POST",
        path="/api/v1/cache/warm",
        scope="admin",
        handler=routes.warm,
        body="WarmRequest",
        answer="WarmReport",
        errors=(404, 413, 422),
        summary="Run goals so that their answers are cached (client.cache.warm)",
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/metrics",
        scope="read",
        feature="metrics",
        handler=routes.metrics_series,
        summary="Hits and misses over time (client.cache.get_metrics)",
        answer="MetricSeries",
        query=(("period", "how far back, such as 1h or 30m", "1h"),),
        errors=(422, 501),
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/analyze",
        scope="read",
        feature="analyze",
        handler=routes.analyze,
        summary="Miss-ratio curve and recommended sizes (client.cache.analyze)",
        answer="Record",
        errors=(501,),
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/diagnose",
        scope="read",
        feature="diagnose",
        handler=routes.diagnose,
        summary="Why the hit rate is low (client.cache.diagnose)",
        answer="Record",
        query=(("agent_id", "only this agent", ""), ("layer", "only this layer", "")),
        errors=(404, 422, 501),
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/alerts",
        scope="read",
        feature="alerts",
        handler=routes.alerts,
        summary="Configured alerts and their state (client.alerts)",
        answer="Alerts",
        errors=(501,),
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/savings",
        scope="read",
        handler=routes.savings,
        summary="Responses served from the cache, tokens and cost saved (client.cache.get_savings)",
        answer="Record",
        query=(("period", "how far back, such as 30d or 1h", "30d"),),
        errors=(422,),
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/memory",
        scope="read",
        feature="memory",
        handler=routes.memory,
        summary="Memory used and the largest entries (client.cache.memory_usage)",
        answer="Record",
        errors=(501,),
    ),
    ApiRoute(
        method="GET",
        path="/dashboard",
        scope="read",
        handler=routes.dashboard,
        summary="The live dashboard (open it as /dashboard?token=...)",
        answer=None,
        text="text/html",
    ),
    ApiRoute(
        method="GET",
        path="/metrics",
        scope="read",
        handler=routes.metrics_text,
        summary="Prometheus metrics, one sample per layer",
        answer=None,
        text="text/plain",
    ),
    ApiRoute(
        method="GET",
        path="/api/v1/layers/{layer}/keys",
        scope="read",
        handler=routes.list_keys,
        summary="A layer's keys, sorted, optionally matching a glob",
        answer="KeyList",
        query=(("pattern", "a glob over keys", "*"), ("limit", "the most keys returned", "100")),
        converters=(("layer", "str"),),
        errors=(422,),
    ),
    # Last: {key:path} matches anything below /api/v1/cache/.
    ApiRoute(
        method="GET",
        path="/api/v1/cache/{key}",
        scope="read",
        handler=routes.get_entry,
        summary="One cached entry",
        answer="CacheEntry",
        query=_LAYER,
        converters=_KEY,
        errors=(404, 422),
    ),
    ApiRoute(
        method="DELETE",
        path="/api/v1/cache/{key}",
        scope="admin",
        handler=routes.delete_entry,
        summary="Delete one entry (and what was computed from it)",
        answer="Deleted",
        query=_LAYER,
        converters=_KEY,
        errors=(404, 422),
    ),
)
