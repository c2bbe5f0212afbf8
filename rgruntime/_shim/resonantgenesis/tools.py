"""The guide's ``from resonantgenesis.tools import Tool, cache`` (:mod:`rgruntime.tools`)."""

from rgruntime.tools import (
    STRATEGIES,
    CachedTool,
    NoRuntimeError,
    Tool,
    ToolCacheSettings,
    cache,
    cache_info,
    current_runtime,
    passthrough,
    use_runtime,
)

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
