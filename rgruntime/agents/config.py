"""The caching settings of an agent and of a session, in the caching guide's dict shapes.

```python
cache_config = {"enabled": True, "response_ttl": 3600, "tool_cache": True, "memory_cache": True}
cache_config = {"response_cache": {"enabled": True, "ttl": 86400, "max_entries": 10000,
                                   "similarity_threshold": 0.95}}
cache_config = {"semantic_cache": {"enabled": True, "similarity_threshold": 0.92,
                                   "embedding_model": "text-embedding-3-small"}}
session_cache = {"state_cache": True, "context_cache": True, "history_limit": 50}
```

Every key is validated: an unknown key or a bad value raises :class:`~rgruntime.ConfigError`
naming the dotted field (``cache_config.response_cache.ttl``), the value and what is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from rgruntime.errors import ConfigError
from rgruntime.validation import (
    boolean,
    check_known_keys,
    optional,
    optional_count,
    optional_duration,
    positive_int,
    similarity,
)

__all__ = [
    "AgentCacheConfig",
    "ResponseCacheConfig",
    "SemanticCacheConfig",
    "SessionCacheConfig",
]


def _model_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "a model name such as 'text-embedding-3-small'")
    return value


def _parse_fields(
    parsers: Mapping[str, Callable[[object, str], Any]], options: object, where: str
) -> dict[str, Any]:
    """Validate a dict of settings, each with its own parser."""
    checked = check_known_keys(options, tuple(parsers), where)
    return {key: parsers[key](value, f"{where}.{key}") for key, value in checked.items()}


_RESPONSE_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "enabled": boolean,
    "ttl": optional_duration,
    "max_entries": optional_count,
    "similarity_threshold": optional(similarity),
}


@attrs.frozen(kw_only=True)
class ResponseCacheConfig:
    """The guide's ``response_cache``: whether, how long and how many of an agent's answers."""

    enabled: bool = True
    ttl: float | None = None
    max_entries: int | None = None
    similarity_threshold: float | None = None

    @classmethod
    def from_mapping(cls, options: object, where: str) -> ResponseCacheConfig:
        return cls(**_parse_fields(_RESPONSE_CACHE_KEYS, options, where))


_SEMANTIC_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "enabled": boolean,
    "similarity_threshold": similarity,
    "embedding_model": optional(_model_name),
}


@attrs.frozen(kw_only=True)
class SemanticCacheConfig:
    """The guide's ``semantic_cache``: answer similar goals from the cache (off by default)."""

    enabled: bool = False
    similarity_threshold: float = 0.92
    embedding_model: str | None = None

    @classmethod
    def from_mapping(cls, options: object, where: str) -> SemanticCacheConfig:
        return cls(**_parse_fields(_SEMANTIC_CACHE_KEYS, options, where))


@attrs.frozen(kw_only=True)
class AgentCacheConfig:
    """An agent's ``cache_config``.

    ``enabled=False`` turns every cache off for the agent. The TTL of its cached answers is, in
    order: the request's ``cache_ttl``, ``response_cache.ttl`` (or its alias ``response_ttl``),
    the ``response`` layer's default.
    """

    enabled: bool = True
    tool_cache: bool = True
    memory_cache: bool = True
    response_cache: ResponseCacheConfig = ResponseCacheConfig()
    semantic_cache: SemanticCacheConfig = SemanticCacheConfig()

    @property
    def response_ttl(self) -> float | None:
        return self.response_cache.ttl

    @property
    def caches_responses(self) -> bool:
        return self.enabled and self.response_cache.enabled

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any] | AgentCacheConfig | None, where: str = "cache_config"
    ) -> AgentCacheConfig:
        if options is None:
            return cls()
        if isinstance(options, AgentCacheConfig):
            return options
        known = (
            "enabled",
            "response_ttl",
            "tool_cache",
            "memory_cache",
            "response_cache",
            "semantic_cache",
        )
        checked = check_known_keys(options, known, where)
        response = ResponseCacheConfig.from_mapping(
            checked.get("response_cache", {}), f"{where}.response_cache"
        )
        if "response_ttl" in checked:
            ttl = optional_duration(checked["response_ttl"], f"{where}.response_ttl")
            if response.ttl is not None and ttl is not None and ttl != response.ttl:
                raise ConfigError(
                    f"{where}.response_ttl",
                    checked["response_ttl"],
                    f"the same TTL as {where}.response_cache.ttl ({response.ttl:g} s), or one "
                    "of the two only",
                )
            response = attrs.evolve(response, ttl=response.ttl if response.ttl else ttl)
        return cls(
            enabled=boolean(checked.get("enabled", True), f"{where}.enabled"),
            tool_cache=boolean(checked.get("tool_cache", True), f"{where}.tool_cache"),
            memory_cache=boolean(checked.get("memory_cache", True), f"{where}.memory_cache"),
            response_cache=response,
            semantic_cache=SemanticCacheConfig.from_mapping(
                checked.get("semantic_cache", {}), f"{where}.semantic_cache"
            ),
        )


_SESSION_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "state_cache": boolean,
    "context_cache": boolean,
    "history_limit": positive_int,
    "ttl": optional_duration,
}


@attrs.frozen(kw_only=True)
class SessionCacheConfig:
    """A session's ``cache_config``: what of it the ``session`` layer keeps, and for how long.

    ``state_cache`` keeps the session's state (a dict the agent may update); ``context_cache``
    keeps its conversation history, trimmed to the last ``history_limit`` messages in whole
    exchanges (a user message and its answer; an odd limit keeps one less); ``ttl`` is
    the session's life in the cache (``None``: until invalidated or evicted).
    """

    state_cache: bool = True
    context_cache: bool = True
    history_limit: int = 50
    ttl: float | None = None

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any] | SessionCacheConfig | None, where: str = "cache_config"
    ) -> SessionCacheConfig:
        if options is None:
            return cls()
        if isinstance(options, SessionCacheConfig):
            return options
        return cls(**_parse_fields(_SESSION_CACHE_KEYS, options, where))
