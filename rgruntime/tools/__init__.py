"""Cached tools: the caching guide's ``from resonantgenesis.tools import Tool, cache``.

```python
from rgruntime.tools import Tool, cache

class WeatherTool(Tool):
    @cache(ttl=300, key_params=["location"])
    async def get_weather(self, location: str) -> dict:
        return await self.fetch_weather(location)
```

``@cache`` works on an ``async def`` function or method. The wrapper is itself an ``async def``
(``inspect.iscoroutinefunction`` is true) made with ``functools.wraps``: name, docstring,
signature and ``__wrapped__`` are the function's, so agent frameworks that read signatures see
the tool as written. Each call looks the result up in the running runtime's ``tool`` layer by the
key parameters; concurrent identical calls run the function once (the layer's single flight).
A method's cache never holds its instance: the key uses the tool's name and, if it defines one,
its :meth:`Tool.cache_scope`, never ``self`` itself.

The runtime is the one open in the current context (``async with ResonantGenesis(...)`` or
``open_runtime()``, or :func:`use_runtime`). With none open a call raises
:class:`NoRuntimeError`, unless pass-through was asked for: ``@cache(..., passthrough=True)``, or
``with passthrough():`` around the calls (for unit tests of the tool itself).

Options and the key's layout: :class:`ToolCacheSettings` and :mod:`rgruntime.tools.caching`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from rgruntime.errors import ConfigError
from rgruntime.runtime.runtime import current_runtime, use_runtime
from rgruntime.tools.base import Tool
from rgruntime.tools.caching import (
    STRATEGIES,
    CallPlan,
    NoRuntimeError,
    TagsOption,
    ToolCacheSettings,
    cached_call,
    passthrough,
)

if TYPE_CHECKING:
    from rgruntime.semantic.judges import Judge

__all__ = [
    "STRATEGIES",
    "CachedTool",
    "NoRuntimeError",
    "Tool",
    "ToolCacheSettings",
    "cache",
    "cache_info",
    "current_runtime",
    "passthrough",
    "use_runtime",
]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class CachedTool:
    """What ``@cache`` knows about a function (``cache_info(wrapper)``)."""

    __slots__ = ("function", "plan", "settings")

    def __init__(self, function: Callable[..., Awaitable[Any]], plan: CallPlan) -> None:
        self.function = function
        self.plan = plan
        self.settings = plan.settings

    def __repr__(self) -> str:
        return f"<CachedTool {self.function.__qualname__} {self.settings.strategy}>"


def cache_info(function: object) -> CachedTool | None:
    """The ``@cache`` settings of ``function`` (a wrapper, or a method bound from one), or None."""
    info = getattr(function, "__rg_cache__", None)
    return info if isinstance(info, CachedTool) else None


@overload
def cache(function: F, /) -> F: ...
@overload
def cache(
    ttl: float | str | None = None,
    key_params: Iterable[str] | None = None,
    *,
    strategy: str = "exact",
    layer: str = "tool",
    tags: TagsOption = None,
    cache_none: bool = False,
    skip_params: Iterable[str] = (),
    name: str | None = None,
    version: str | int | None = None,
    passthrough: bool = False,
    enabled: bool = True,
    similarity_threshold: float | None = None,
    embedder: str = "minilm",
    semantic_param: str | None = None,
    max_error_rate: float | None = None,
    judge: Literal["answer"] | Judge = "answer",
) -> Callable[[F], F]: ...
def cache(
    ttl: Any = None,
    key_params: Iterable[str] | None = None,
    *,
    strategy: str = "exact",
    layer: str = "tool",
    tags: TagsOption = None,
    cache_none: bool = False,
    skip_params: Iterable[str] = (),
    name: str | None = None,
    version: str | int | None = None,
    passthrough: bool = False,
    enabled: bool = True,
    similarity_threshold: float | None = None,
    embedder: str = "minilm",
    semantic_param: str | None = None,
    max_error_rate: float | None = None,
    judge: Literal["answer"] | Judge = "answer",
) -> Any:
    """Cache an ``async def`` tool's results: ``@cache(ttl=300, key_params=["location"])``.

    See :class:`ToolCacheSettings` for every option; all are validated here, at decoration
    (:class:`~rgruntime.ConfigError` naming the option, the value and what is accepted). Bare
    ``@cache`` caches by every parameter with the layer's TTL.
    """
    if callable(ttl) and not isinstance(ttl, str):
        return cache()(ttl)
    settings = ToolCacheSettings.checked(
        "cache",
        ttl=ttl,
        key_params=key_params,
        strategy=strategy,
        layer=layer,
        tags=tags,
        cache_none=cache_none,
        skip_params=skip_params,
        name=name,
        version=version,
        passthrough=passthrough,
        enabled=enabled,
        similarity_threshold=similarity_threshold,
        embedder=embedder,
        semantic_param=semantic_param,
        max_error_rate=max_error_rate,
        judge=judge,
    )

    def decorate(function: F) -> F:
        if not inspect.iscoroutinefunction(function):
            raise ConfigError(
                "cache",
                function,
                "an async def function or method (a coroutine function)",
            )
        plan = CallPlan.of(function, settings)

        @functools.wraps(function)
        async def cached(*args: Any, **kwargs: Any) -> Any:
            return await cached_call(plan, args, kwargs)

        cached.__rg_cache__ = CachedTool(function, plan)  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    return decorate
