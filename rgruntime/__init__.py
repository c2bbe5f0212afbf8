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
    BlockingClient,
    ExecutionResult,
    ResonantGenesis,
    RunContext,
    Savings,
    Session,
    SessionCacheConfig,
    SessionNotFoundError,
    connect,
)
from rgruntime.config import BUILTIN_LAYERS, STRATEGIES, LayerConfig, RuntimeConfig
from rgruntime.errors import (
    ConfigError,
    InvalidArgumentError,
    LayerNotFoundError,
    LoaderRecursionError,
    RGRuntimeError,
    RuntimeClosedError,
)
from rgruntime.policies import EvictionPolicy, LRUPolicy, TTLPolicy
from rgruntime.runtime import CacheStats, Layer, LayerStatistics, Runtime, open_runtime
from rgruntime.sizing import estimate_size
from rgruntime.units import parse_duration, parse_size

__all__ = [
    "BUILTIN_LAYERS",
    "MISSING",
    "STRATEGIES",
    "Agent",
    "AgentCacheConfig",
    "AgentNotFoundError",
    "AgentOutput",
    "BlockingClient",
    "CacheStats",
    "ConfigError",
    "EvictionPolicy",
    "ExecutionResult",
    "InvalidArgumentError",
    "LRUPolicy",
    "Layer",
    "LayerConfig",
    "LayerNotFoundError",
    "LayerStatistics",
    "LoaderRecursionError",
    "MissingType",
    "RGRuntimeError",
    "ResonantGenesis",
    "RunContext",
    "Runtime",
    "RuntimeClosedError",
    "RuntimeConfig",
    "Savings",
    "Session",
    "SessionCacheConfig",
    "SessionNotFoundError",
    "TTLPolicy",
    "__version__",
    "connect",
    "estimate_size",
    "open_runtime",
    "parse_duration",
    "parse_size",
]
