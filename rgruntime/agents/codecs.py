"""The client's cached values as the versioned envelope encodes them (warm restarts, remote
stores): one named codec per attrs class the client puts in a layer.

The names are part of saved files and shared servers: keep them stable across releases.
"""

from __future__ import annotations

from rgruntime.agents.config import SessionCacheConfig
from rgruntime.agents.execution import CachedResponse
from rgruntime.agents.memory import MemoryRecord, MemoryResult
from rgruntime.agents.models import CachedCompletion
from rgruntime.agents.sessions import Session
from rgruntime.providers import Completion, Message, ToolCall, Usage
from rgruntime.stores.serialization import CodecRegistry

__all__ = ["register_client_codecs"]

_CLIENT_TYPES: dict[str, type] = {
    "rgruntime.response": CachedResponse,
    "rgruntime.completion.cached": CachedCompletion,
    "rgruntime.completion": Completion,
    "rgruntime.usage": Usage,
    "rgruntime.tool_call": ToolCall,
    "rgruntime.message": Message,
    "rgruntime.memory.result": MemoryResult,
    "rgruntime.memory.record": MemoryRecord,
    "rgruntime.session": Session,
    "rgruntime.session.config": SessionCacheConfig,
}


def register_client_codecs(registry: CodecRegistry) -> None:
    """Register the client's value types in ``registry`` (once; a second call is a no-op)."""
    known = set(registry.names())
    for name, cls in _CLIENT_TYPES.items():
        if name not in known:
            registry.register_attrs(cls, name)
