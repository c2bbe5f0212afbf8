"""Request bodies and URL parameters: read within limits, checked field by field.

Every check names the field it rejects (``422``); a body over the limit is refused with ``413``
before it is parsed, whether or not the client announced its length.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs
from starlette.requests import Request

from rgruntime.api.problems import ApiError, invalid

__all__ = [
    "InvalidateBody",
    "WarmBody",
    "check_key",
    "check_layer_name",
    "read_json",
]

#: The largest request body accepted (a warm of a few thousand goals fits).
MAX_BODY_BYTES: Final = 256 * 1024
#: The longest key, pattern, tag or goal accepted.
MAX_TEXT: Final = 1024
#: The most goals one warm runs, and the most tags one invalidation names.
MAX_ITEMS: Final = 1000
#: Warming concurrency accepted from the network.
MAX_CONCURRENCY: Final = 64

#: The key prefix of each of the client's layers: a request naming the layer reaches no key
#: without it. (The tool layer's keys start with the tool's name, and a layer added at run time
#: names its own keys: there the layer itself is the bound.)
LAYER_PREFIXES: Final[Mapping[str, str]] = {
    "response": "response:",
    "session": "session:",
    "model": "model:",
    "memory": "memory:",
}


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object, refused with 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    # Closed at once when the body is refused half-read (trio warns about a generator left
    # to the garbage collector).
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise ApiError(422, "invalid_body", "the request needs a JSON object body", field="body")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, "invalid_body", "the body is not valid JSON", field="body") from None
    if not isinstance(body, dict):
        raise invalid("body", body, "a JSON object")
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the body exceeds {limit} bytes", field="body")


def _text(field: str, value: object, accepted: str = "a non-empty string") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise invalid(field, value, f"{accepted} of at most {MAX_TEXT} characters")
    if not value.isprintable():
        raise invalid(field, value, f"{accepted} without control characters")
    return value


def _texts(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
        raise invalid(field, value, f"a list of 1 to {MAX_ITEMS} strings")
    return tuple(_text(f"{field}[{index}]", item) for index, item in enumerate(value))


def _known_fields(body: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            raise invalid(name, body[name], f"only the fields {', '.join(known)}")


def check_layer_name(value: object, known: Mapping[str, object]) -> str:
    if not isinstance(value, str) or value not in known:
        raise invalid("layer", value, f"a layer name: {', '.join(known)}")
    return value


def check_key(key: str, layer: str) -> str:
    """A key from the URL, which must lie inside ``layer``'s prefix."""
    _text("key", key)
    prefix = LAYER_PREFIXES.get(layer)
    if prefix is not None and not key.startswith(prefix):
        raise invalid("key", key, f"a key of the {layer} layer (starting with {prefix!r})")
    return key


@attrs.frozen(kw_only=True)
class InvalidateBody:
    """``POST /api/v1/cache/invalidate``: the guide's ``client.cache.invalidate`` arguments
    (which reach every layer, as in the guide)."""

    agent_id: str | None = None
    key: str | None = None
    pattern: str | None = None
    tags: tuple[str, ...] | None = None

    FIELDS = ("agent_id", "key", "pattern", "tags")

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> InvalidateBody:
        _known_fields(body, cls.FIELDS)
        values = {
            name: None if body.get(name) is None else _text(name, body[name])
            for name in ("agent_id", "key", "pattern")
        }
        tags = None if body.get("tags") is None else _texts("tags", body["tags"])
        if values["agent_id"] is not None and not values["agent_id"].isidentifier():
            raise invalid("agent_id", values["agent_id"], "an agent id such as 'agent_123'")
        parsed = cls(tags=tags, **values)
        if parsed.agent_id is None and parsed.key is None and parsed.pattern is None and not tags:
            raise invalid("body", dict(body), "at least one of agent_id, key, pattern, tags")
        return parsed


@attrs.frozen(kw_only=True)
class WarmBody:
    """``POST /api/v1/cache/warm``: ``client.cache.warm`` arguments."""

    agent_id: str
    goals: tuple[str, ...]
    cache_ttl: float | str | None = None
    concurrency: int | None = None
    cache_tags: tuple[str, ...] = ()

    FIELDS = ("agent_id", "goals", "cache_ttl", "concurrency", "cache_tags")

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> WarmBody:
        _known_fields(body, cls.FIELDS)
        if "agent_id" not in body:
            raise invalid("agent_id", None, "the id of the agent to warm, such as 'agent_123'")
        ttl = body.get("cache_ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float | str)):
            raise invalid("cache_ttl", ttl, "seconds (a number) or a duration such as '1d'")
        if isinstance(ttl, str):
            _text("cache_ttl", ttl)
        concurrency = body.get("concurrency")
        if concurrency is not None and (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise invalid("concurrency", concurrency, f"a whole number from 1 to {MAX_CONCURRENCY}")
        tags = body.get("cache_tags")
        return cls(
            agent_id=_text("agent_id", body["agent_id"]),
            goals=_texts("goals", body.get("goals")),
            cache_ttl=ttl,
            concurrency=concurrency,
            cache_tags=() if tags is None else _texts("cache_tags", tags),
        )

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cache_tags": list(self.cache_tags)}
        if self.cache_ttl is not None:
            options["cache_ttl"] = self.cache_ttl
        if self.concurrency is not None:
            options["concurrency"] = self.concurrency
        return options
