"""rgruntime: an async, actor-based, in-process cache runtime for LLM agents (asyncio and trio).

>>> import anyio, rgruntime
>>> async def main():
...     async with rgruntime.open_runtime({"max_size": "100MB"}) as runtime:
...         tools = runtime.layer("tool")
...         await tools.set("weather:paris", {"temp": 21}, tags=["weather"])
...         return await tools.get("weather:paris")
>>> anyio.run(main)
{'temp': 21}
"""

from rgruntime._missing import MISSING, MissingType
from rgruntime._version import __version__
from rgruntime.agents import (
    Agent,
    AgentCacheConfig,
    AgentNotFoundError,
    AgentOutput,
    AutoInvalidateConfig,
    BlockingClient,
    ExecutionResult,
    MemoryConfig,
    MemoryRecord,
    MemoryResult,
    PreloadResult,
    ResonantGenesis,
    RunContext,
    Savings,
    Session,
    SessionCacheConfig,
    SessionCapacityError,
    SessionNotFoundError,
    ToolCacheOverride,
    WarmingSchedule,
    WarmProgress,
    WarmReport,
    connect,
)
from rgruntime.agents.events import Event, EventBus, EventStats
from rgruntime.config import BUILTIN_LAYERS, STRATEGIES, LayerConfig, RuntimeConfig
from rgruntime.errors import (
    CapacityError,
    ConfigError,
    InvalidArgumentError,
    LayerNotFoundError,
    LoaderRecursionError,
    LoadFailedError,
    LoadInterruptedError,
    RGRuntimeError,
    RuntimeClosedError,
)
from rgruntime.observe import (
    Alert,
    AlertCondition,
    Alerts,
    Analysis,
    Cause,
    Diagnosis,
    FiredAlert,
    LayerAnalysis,
    MemoryUsage,
    MetricPoint,
    MissRatioCurve,
    Operations,
    StaleEntry,
)
from rgruntime.policies import EvictionPolicy, LRUPolicy, TTLPolicy
from rgruntime.runtime import CacheStats, Layer, LayerStatistics, Lookup, Runtime, open_runtime
from rgruntime.runtime.dependencies import DependencyGraph, record_read
from rgruntime.runtime.runtime import current_runtime, install_api_serving, use_runtime
from rgruntime.sizing import estimate_size
from rgruntime.tools import NoRuntimeError, Tool, ToolCacheSettings, cache
from rgruntime.units import parse_duration, parse_size

__all__ = [
    "BUILTIN_LAYERS",
    "MISSING",
    "STRATEGIES",
    "Agent",
    "AgentCacheConfig",
    "AgentNotFoundError",
    "AgentOutput",
    "Alert",
    "AlertCondition",
    "Alerts",
    "Analysis",
    "AutoInvalidateConfig",
    "BlockingClient",
    "CacheStats",
    "CapacityError",
    "Cause",
    "ConfigError",
    "DependencyGraph",
    "Diagnosis",
    "Event",
    "EventBus",
    "EventStats",
    "EvictionPolicy",
    "ExecutionResult",
    "FiredAlert",
    "InvalidArgumentError",
    "LRUPolicy",
    "Layer",
    "LayerAnalysis",
    "LayerConfig",
    "LayerNotFoundError",
    "LayerStatistics",
    "LoadFailedError",
    "LoadInterruptedError",
    "LoaderRecursionError",
    "Lookup",
    "MemoryConfig",
    "MemoryRecord",
    "MemoryResult",
    "MemoryUsage",
    "MetricPoint",
    "MissRatioCurve",
    "MissingType",
    "NoRuntimeError",
    "Operations",
    "PreloadResult",
    "RGRuntimeError",
    "ResonantGenesis",
    "RunContext",
    "Runtime",
    "RuntimeClosedError",
    "RuntimeConfig",
    "Savings",
    "Session",
    "SessionCacheConfig",
    "SessionCapacityError",
    "SessionNotFoundError",
    "StaleEntry",
    "TTLPolicy",
    "Tool",
    "ToolCacheOverride",
    "ToolCacheSettings",
    "WarmProgress",
    "WarmReport",
    "WarmingSchedule",
    "__version__",
    "cache",
    "connect",
    "current_runtime",
    "estimate_size",
    "open_runtime",
    "parse_duration",
    "parse_size",
    "record_read",
    "use_runtime",
]


async def _serve_runtime_api(
    runtime: Runtime, host: str, port: int, *, tokens: object = None
) -> object:
    # Imported when called: the api extra (starlette, hypercorn) is optional.
    from rgruntime.api.server import serve_runtime_api

    return await serve_runtime_api(runtime, host, port, tokens=tokens)


install_api_serving(_serve_runtime_api)
