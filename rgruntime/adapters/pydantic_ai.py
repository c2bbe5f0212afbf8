"""pydantic-ai: a capability that caches model responses (and chosen tools' results) through
rgruntime (``pip install 'rgruntime[pydantic-ai]'``).

    from pydantic_ai import Agent
    from rgruntime.adapters.pydantic_ai import RGCacheCapability

    agent = Agent(model, capabilities=[RGCacheCapability(runtime, semantic=True)])

- ``wrap_model_request`` returns a cached ``ModelResponse`` without calling its handler. The key
  holds the model (system and name), the messages as the model sees them (kinds, instructions,
  parts' contents, tool names and arguments; not timestamps, run ids, usage or provider
  details, which change on every run), tool call ids by order of appearance, the model settings
  and the request parameters (tools' schemas, output mode and schema). Semantic matching
  compares the last user prompt among requests agreeing on everything else.
- Identical requests arriving while one runs share its call (single flight).
- A hit's usage is zero (``RequestUsage()``), its tool call ids are new (pydantic-ai pairs each
  tool return with its call by id), and the adapter's ``stats()`` records the tokens it saved.
- ``cache_tools=["get_weather", ...]``: ``wrap_tool_execute`` caches those tools' results in the
  ``tool`` layer by tool name and validated arguments (opt-in by name: a tool with side effects
  must run every time), tagged ``tool:<name>``.
- Streamed runs (``run_stream``) go through ``wrap_model_request`` too: pydantic-ai takes a
  cached response without streaming it; a fresh streamed response is cached once complete.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    ToolCallPart,
)
from pydantic_ai.usage import RequestUsage

from rgruntime.adapters.common import AdapterCache, AdapterStats, jsonable
from rgruntime.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_ai.capabilities.abstract import WrapModelRequestHandler, WrapToolExecuteHandler
    from pydantic_ai.models import ModelRequestContext
    from pydantic_ai.tools import RunContext, ToolDefinition

    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.runtime import Runtime

__all__ = ["RGCacheCapability"]

#: What of a message or part shapes the model's answer (everything else varies per run).
_MESSAGE_FIELDS: Final = ("kind", "instructions", "parts")
_PART_FIELDS: Final = ("part_kind", "content", "tool_name", "args", "tool_call_id")
#: Finish reasons of an answer cut short or withheld: returned, never cached.
_INCOMPLETE: Final = frozenset({"length", "content_filter", "error"})


def _messages(messages: list[ModelMessage]) -> list[dict[str, Any]]:
    """The messages as a key sees them, tool call ids numbered in order of appearance."""
    call_ids: dict[str, str] = {}
    keyed = []
    for message in ModelMessagesTypeAdapter.dump_python(messages, mode="json"):
        parts = []
        for part in message.get("parts", ()):
            kept = {name: part[name] for name in _PART_FIELDS if part.get(name) is not None}
            call_id = kept.get("tool_call_id")
            if isinstance(call_id, str):
                kept["tool_call_id"] = call_ids.setdefault(call_id, f"call#{len(call_ids)}")
            parts.append(kept)
        keyed.append({**{name: message.get(name) for name in _MESSAGE_FIELDS}, "parts": parts})
    return keyed


def _split(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The last user prompt's text, and the messages with that text left out."""
    if not messages or messages[-1]["kind"] != "request":
        return None, messages
    parts = messages[-1]["parts"]
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if part.get("part_kind") == "user-prompt" and isinstance(part.get("content"), str):
            blanked = [*parts[:index], {**part, "content": None}, *parts[index + 1 :]]
            return part["content"], [*messages[:-1], {**messages[-1], "parts": blanked}]
    return None, messages


def _replayed(response: ModelResponse) -> ModelResponse:
    """A cached response as a hit returns it: zero usage, fresh tool call ids."""
    parts = [
        replace(part, tool_call_id=f"call_{uuid.uuid4().hex[:24]}")
        if isinstance(part, ToolCallPart)
        else part
        for part in response.parts
    ]
    return replace(response, parts=parts, usage=RequestUsage())


def _cacheable(response: ModelResponse) -> bool:
    return bool(response.parts) and response.finish_reason not in _INCOMPLETE


@dataclass
class RGCacheCapability(AbstractCapability[Any]):
    """Caches an agent's model responses (and ``cache_tools``' results) in rgruntime.

    ``cache``: a :class:`~rgruntime.Runtime` or :class:`~rgruntime.ResonantGenesis`.
    ``semantic``, ``ttl``, ``tags``, ``layer``: as :class:`~rgruntime.adapters.AdapterCache`.
    ``tool_ttl``: the cached tool results' TTL (default: the ``tool`` layer's, 5 minutes).
    """

    cache: Runtime | ResonantGenesis
    layer: str = "model"
    ttl: float | str | None = None
    tags: Iterable[str] = ()
    semantic: bool | Mapping[str, Any] = False
    cache_tools: Iterable[str] = ()
    tool_ttl: float | str | None = None
    _models: AdapterCache = field(init=False, repr=False)
    _tools: AdapterCache = field(init=False, repr=False)
    _tool_names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.cache_tools, str):
            raise ConfigError(
                "cache_tools", self.cache_tools, "a list of tool names, not one string"
            )
        self._models = AdapterCache(
            self.cache,
            namespace="pydantic_ai",
            layer=self.layer,
            ttl=self.ttl,
            tags=self.tags,
            semantic=self.semantic,
        )
        self._tools = AdapterCache(
            self.cache,
            namespace="pydantic_ai_tools",
            layer="tool",
            ttl=self.tool_ttl,
            tags=self.tags,
        )
        self._tool_names = frozenset(self.cache_tools)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a live runtime: not something an agent spec can name

    def stats(self) -> AdapterStats:
        """The model requests' counters."""
        return self._models.stats()

    def tool_stats(self) -> AdapterStats:
        return self._tools.stats()

    async def wrap_model_request(
        self,
        ctx: RunContext[Any],
        *,
        request_context: ModelRequestContext,
        handler: WrapModelRequestHandler,
    ) -> ModelResponse:
        model = request_context.model
        messages = _messages(request_context.messages)
        text, rest = _split(messages)
        settings = {
            "system": model.system,
            "settings": jsonable(request_context.model_settings),
            "parameters": jsonable(request_context.model_request_parameters),
        }
        request = self._models.request(
            model=model.model_name,
            exact={**settings, "messages": messages},
            context={**settings, "messages": rest},
            text=text,
        )
        fresh: list[ModelResponse] = []

        async def call() -> ModelResponse:
            response = await handler(request_context)
            fresh.append(response)
            return response

        outcome = await self._models.fetch(
            request,
            call,
            tokens_of=lambda response: int(response.usage.total_tokens),
            cacheable=_cacheable,
        )
        if fresh:
            return fresh[0]
        return _replayed(outcome.value)

    async def wrap_tool_execute(
        self,
        ctx: RunContext[Any],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        if tool_def.name not in self._tool_names:
            return await handler(args)
        request = self._tools.request(
            model=tool_def.name,
            exact=[tool_def.name, jsonable(args)],
            context=None,
            text=None,
            tag=f"tool:{tool_def.name}",
        )
        outcome = await self._tools.fetch(request, lambda: handler(args), tokens_of=lambda _: 0)
        return outcome.value
