"""The caching guide's client: agents, sessions, response and model caching."""

from rgruntime.agents.agent import Agent, AgentNotFoundError, AgentRegistry
from rgruntime.agents.blocking import BlockingClient, connect
from rgruntime.agents.client import CacheAPI, ResonantGenesis, SessionsAPI
from rgruntime.agents.config import (
    AgentCacheConfig,
    AutoInvalidateConfig,
    MemoryCacheConfig,
    MemoryConfig,
    MemorySearch,
    ResponseCacheConfig,
    SemanticCacheConfig,
    SessionCacheConfig,
    ToolCacheOverride,
)
from rgruntime.agents.execution import CachedResponse, ExecutionResult
from rgruntime.agents.memory import MemoryAPI, MemoryRecord, MemoryResult, PreloadResult
from rgruntime.agents.models import CachedCompletion, ModelCall, ModelGateway
from rgruntime.agents.runner import AgentOutput, RunContext, Runner
from rgruntime.agents.savings import LayerSavings, Savings
from rgruntime.agents.sessions import Session, SessionCapacityError, SessionNotFoundError
from rgruntime.agents.tools import RegisteredTool, ToolNotFoundError, ToolRegistry
from rgruntime.agents.warming import WarmingSchedule, WarmProgress, WarmReport

__all__ = [
    "Agent",
    "AgentCacheConfig",
    "AgentNotFoundError",
    "AgentOutput",
    "AgentRegistry",
    "AutoInvalidateConfig",
    "BlockingClient",
    "CacheAPI",
    "CachedCompletion",
    "CachedResponse",
    "ExecutionResult",
    "LayerSavings",
    "MemoryAPI",
    "MemoryCacheConfig",
    "MemoryConfig",
    "MemoryRecord",
    "MemoryResult",
    "MemorySearch",
    "ModelCall",
    "ModelGateway",
    "PreloadResult",
    "RegisteredTool",
    "ResonantGenesis",
    "ResponseCacheConfig",
    "RunContext",
    "Runner",
    "Savings",
    "SemanticCacheConfig",
    "Session",
    "SessionCacheConfig",
    "SessionCapacityError",
    "SessionNotFoundError",
    "SessionsAPI",
    "ToolCacheOverride",
    "ToolNotFoundError",
    "ToolRegistry",
    "WarmProgress",
    "WarmReport",
    "WarmingSchedule",
    "connect",
]
