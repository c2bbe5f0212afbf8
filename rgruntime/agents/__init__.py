"""The caching guide's client: agents, sessions, response and model caching."""

from rgruntime.agents.agent import Agent, AgentNotFoundError, AgentRegistry, Runner
from rgruntime.agents.blocking import BlockingClient, connect
from rgruntime.agents.client import CacheAPI, ResonantGenesis, SessionsAPI
from rgruntime.agents.config import (
    AgentCacheConfig,
    ResponseCacheConfig,
    SemanticCacheConfig,
    SessionCacheConfig,
)
from rgruntime.agents.execution import CachedResponse, ExecutionResult
from rgruntime.agents.models import CachedCompletion, ModelCall, ModelGateway
from rgruntime.agents.runner import AgentOutput, RunContext
from rgruntime.agents.savings import LayerSavings, Savings
from rgruntime.agents.sessions import Session, SessionNotFoundError
from rgruntime.agents.tools import RegisteredTool, ToolNotFoundError, ToolRegistry

__all__ = [
    "Agent",
    "AgentCacheConfig",
    "AgentNotFoundError",
    "AgentOutput",
    "AgentRegistry",
    "BlockingClient",
    "CacheAPI",
    "CachedCompletion",
    "CachedResponse",
    "ExecutionResult",
    "LayerSavings",
    "ModelCall",
    "ModelGateway",
    "RegisteredTool",
    "ResonantGenesis",
    "ResponseCacheConfig",
    "RunContext",
    "Runner",
    "Savings",
    "SemanticCacheConfig",
    "Session",
    "SessionCacheConfig",
    "SessionNotFoundError",
    "SessionsAPI",
    "ToolNotFoundError",
    "ToolRegistry",
    "connect",
]
