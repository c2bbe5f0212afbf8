"""The OpenAPI 3.1 document, built from the route table (table.py) and the schemas below."""

from __future__ import annotations

from typing import Any, Final

from rgruntime._version import __version__
from rgruntime.api.bodies import MAX_CONCURRENCY, MAX_ITEMS, MAX_TEXT
from rgruntime.api.table import ROUTES, ApiRoute

__all__ = ["document"]

_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_TEXTS: Final = {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_ITEMS}
_NUMBER: Final = {"type": "number"}
_COUNT: Final = {"type": "integer", "minimum": 0}
_NULLABLE_COUNT: Final = {"type": ["integer", "null"]}
_COUNTERS: Final = (
    "hits", "misses", "load_successes", "load_failures", "evictions", "expirations",
    "invalidations", "oversize_rejections", "stale_served", "entries", "size_bytes",
    "requests", "entry_count", "memory_usage", "eviction_count",
)  # fmt: skip


def _stats(nested: bool) -> dict[str, Any]:
    properties: dict[str, Any] = dict.fromkeys(_COUNTERS, _COUNT)
    properties |= {
        "hit_rate": _NUMBER,
        "miss_rate": _NUMBER,
        "total_load_time": _NUMBER,
        "max_entries": _NULLABLE_COUNT,
        "max_size": _NULLABLE_COUNT,
    }
    if nested:
        properties["layers"] = {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/LayerStats"},
        }
    return {"type": "object", "required": sorted(properties), "properties": properties}


SCHEMAS: Final[dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "version", "layers"],
        "properties": {
            "status": {"const": "ok"},
            "version": {"type": "string"},
            "layers": {"type": "array", "items": {"type": "string"}},
        },
    },
    "LayerStats": _stats(nested=False),
    "Stats": _stats(nested=True),
    "InvalidateRequest": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "At least one of agent_id, key, pattern, tags (key alone or with "
        "agent_id; pattern and tags apply to every agent).",
        "properties": {
            "agent_id": _TEXT,
            "key": _TEXT,
            "pattern": _TEXT,
            "tags": _TEXTS,
        },
    },
    "InvalidateResult": {
        "type": "object",
        "required": ["invalidated"],
        "properties": {"invalidated": _COUNT},
    },
    "WarmRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["agent_id", "goals"],
        "properties": {
            "agent_id": _TEXT,
            "goals": _TEXTS,
            "cache_ttl": {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, _TEXT]},
            "concurrency": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY},
            "cache_tags": _TEXTS,
        },
    },
    "WarmReport": {
        "type": "object",
        "required": [
            "agent_id",
            "warmed",
            "already_cached",
            "not_cached",
            "failed",
            "duration",
            "total",
            "ok",
        ],
        "properties": {
            "agent_id": {"type": "string"},
            "warmed": {"type": "array", "items": {"type": "string"}},
            "already_cached": {"type": "array", "items": {"type": "string"}},
            "not_cached": {"type": "array", "items": {"type": "string"}},
            "failed": {"type": "object", "additionalProperties": {"type": "string"}},
            "duration": _NUMBER,
            "total": _COUNT,
            "ok": {"type": "boolean"},
        },
    },
    "CacheEntry": {
        "type": "object",
        "required": ["key", "layer", "value", "ttl"],
        "properties": {
            "key": {"type": "string"},
            "layer": {"type": "string"},
            "value": {"description": "the cached value as JSON (records as objects)"},
            "ttl": {"type": ["number", "null"], "description": "seconds left, null: none"},
        },
    },
    "Deleted": {
        "type": "object",
        "required": ["deleted", "key", "layer"],
        "properties": {
            "deleted": {"const": True},
            "key": {"type": "string"},
            "layer": {"type": "string"},
        },
    },
    "KeyList": {
        "type": "object",
        "required": ["layer", "total", "keys"],
        "properties": {
            "layer": {"type": "string"},
            "total": _COUNT,
            "keys": {"type": "array", "items": {"type": "string"}},
        },
    },
    "MetricSeries": {
        "type": "object",
        "required": ["metrics"],
        "properties": {"metrics": {"type": "array", "items": {"type": "object"}}},
    },
    "Alerts": {
        "type": "object",
        "required": ["alerts"],
        "properties": {"alerts": {"type": "array", "items": {"type": "object"}}},
    },
    "Record": {"type": "object", "description": "the client method's record, as_dict()"},
}

_REASONS: Final = {
    401: "No valid bearer token",
    403: "The token's scope does not allow this route",
    404: "Not found",
    413: "Body too large",
    414: "URL too long",
    422: "A field is not accepted (named in `field`)",
    501: "Not in this build",
    503: "The runtime is closed",
}


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _REASONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(route: ApiRoute, secured: bool) -> dict[str, Any]:
    if route.answer is None:
        ok = {"description": "OK", "content": {route.text or "text/plain": {"schema": {}}}}
    else:
        ref = {"$ref": f"#/components/schemas/{route.answer}"}
        ok = {"description": "OK", "content": {"application/json": {"schema": ref}}}
    responses: dict[str, Any] = {"200": ok}
    statuses = {*route.errors, 414, 503}
    if secured:
        statuses |= {401, 403}
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _TEXT}
        for name, _ in route.converters
    ]
    for name, description, default in route.query:
        schema: dict[str, Any] = dict(_TEXT)
        if default:
            schema["default"] = default
        parameters.append(
            {"name": name, "in": "query", "required": False, "description": description,
             "schema": schema}
        )  # fmt: skip
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "responses": responses,
        "x-scope": route.scope,
    }
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{route.body}"}}
            },
        }
    if secured:
        operation["security"] = [{"bearer": []}]
    return operation


def document(secured: bool = True) -> dict[str, Any]:
    """The document for a server that asks for tokens (``secured``) or not."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, secured)
    return {
        "openapi": "3.1.0",
        "info": {"title": "rgruntime cache API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
