"""What each route does, as plain async functions of the client and the request."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from rgruntime._version import __version__
from rgruntime.api import prometheus
from rgruntime.api.bodies import InvalidateBody, WarmBody, check_key, check_layer_name, read_json
from rgruntime.api.features import call_feature
from rgruntime.api.jsonable import to_json
from rgruntime.api.problems import ApiError, invalid
from rgruntime.runtime.stats import CacheStats

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis

__all__ = ["stats_json"]

_ABSENT: Final = object()
DASHBOARD: Final = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")
#: The most keys one listing returns.
MAX_LISTED: Final = 1000
#: The guide's names for three counters (``stats.entry_count``...), shown beside ours.
_GUIDE_NAMES: Final = {
    "entry_count": "entries",
    "memory_usage": "size_bytes",
    "eviction_count": "evictions",
}


def stats_json(stats: CacheStats) -> dict[str, Any]:
    """A stats record as the API shows it: every counter and rate, the guide's names too."""
    record: dict[str, Any] = to_json(stats.as_dict())
    record.pop("layers", None)
    for guide_name, ours in _GUIDE_NAMES.items():
        record[guide_name] = record[ours]
    record["layers"] = {name: stats_json(layer) for name, layer in stats.layers.items()}
    return record


async def health(client: ResonantGenesis, request: Request) -> Any:
    return {"status": "ok", "version": __version__, "layers": list(client.runtime.layers)}


async def cache_stats(client: ResonantGenesis, request: Request) -> Any:
    return stats_json(client.cache.get_stats())


async def invalidate(client: ResonantGenesis, request: Request) -> Any:
    body = InvalidateBody.parse(await read_json(request))
    removed = await client.cache.invalidate(
        agent_id=body.agent_id, key=body.key, pattern=body.pattern, tags=body.tags
    )
    return {"invalidated": removed}


async def warm(client: ResonantGenesis, request: Request) -> Any:
    body = WarmBody.parse(await read_json(request))
    client.agents.get(body.agent_id)  # 404 before anything runs
    report = await client.cache.warm(body.agent_id, body.goals, **body.options())
    record: dict[str, Any] = to_json(report)
    record.update(total=report.total, ok=report.ok)
    return record


def _entry_address(client: ResonantGenesis, request: Request) -> tuple[str, str]:
    layer = check_layer_name(request.query_params.get("layer", "response"), client.runtime.layers)
    return check_key(request.path_params["key"], layer), layer


async def get_entry(client: ResonantGenesis, request: Request) -> Any:
    key, layer = _entry_address(client, request)
    value = await client.cache.get(key, layer=layer, default=_ABSENT)
    if value is _ABSENT:
        raise ApiError(404, "not_found", f"no entry {key!r} in the {layer} layer", field="key")
    ttl = client.runtime.layer(layer).ttl(key)
    return {"key": key, "layer": layer, "value": to_json(value), "ttl": to_json(ttl)}


async def delete_entry(client: ResonantGenesis, request: Request) -> Any:
    key, layer = _entry_address(client, request)
    if not await client.cache.delete(key, layer=layer):
        raise ApiError(404, "not_found", f"no entry {key!r} in the {layer} layer", field="key")
    return {"deleted": True, "key": key, "layer": layer}


async def metrics_text(client: ResonantGenesis, request: Request) -> Response:
    return PlainTextResponse(
        prometheus.render(client.cache.get_stats()), media_type=prometheus.CONTENT_TYPE
    )


async def list_keys(client: ResonantGenesis, request: Request) -> Any:
    layer = check_layer_name(request.path_params["layer"], client.runtime.layers)
    pattern = _query(request, "pattern", "*") or "*"
    limit_text = request.query_params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LISTED:
        raise invalid("limit", limit_text, f"a whole number from 1 to {MAX_LISTED}")
    held = client.runtime.layer(layer).keys()
    keys = sorted(key for key in held if fnmatchcase(key, pattern))
    return {"layer": layer, "total": len(keys), "keys": keys[: int(limit_text)]}


def _query(request: Request, name: str, default: str | None = None) -> str | None:
    value = request.query_params.get(name, default)
    if value is not None and (not value or len(value) > 200 or not value.isprintable()):
        raise invalid(name, value, "a non-empty printable string of at most 200 characters")
    return value


async def metrics_series(client: ResonantGenesis, request: Request) -> Any:
    period = _query(request, "period", "1h")
    return {"metrics": to_json(await call_feature(client, "metrics", period=period))}


async def analyze(client: ResonantGenesis, request: Request) -> Any:
    return to_json(await call_feature(client, "analyze"))


async def diagnose(client: ResonantGenesis, request: Request) -> Any:
    arguments = {
        name: value
        for name in ("agent_id", "layer")
        if (value := _query(request, name)) is not None
    }
    return to_json(await call_feature(client, "diagnose", **arguments))


async def savings(client: ResonantGenesis, request: Request) -> Any:
    period = _query(request, "period", "30d")
    return to_json(client.cache.get_savings(period or "30d"))


async def memory(client: ResonantGenesis, request: Request) -> Any:
    return to_json(await call_feature(client, "memory"))


async def dashboard(client: ResonantGenesis, request: Request) -> Response:
    return HTMLResponse(
        DASHBOARD,
        headers={
            # The page and everything it runs come from here: no CDN, no inline frames.
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


async def alerts(client: ResonantGenesis, request: Request) -> Any:
    return {"alerts": to_json(await call_feature(client, "alerts"))}


async def openapi_document(client: ResonantGenesis, request: Request) -> Any:
    from rgruntime.api.openapi import document  # built from the table, which imports this

    return document(secured=request.app.state.secured)
