"""Model providers: where completions come from, and what they cost.

- :mod:`~rgruntime.providers.types`: requests, messages, tool calls, completions and stream
  chunks, as immutable records with ``to_dict()`` / ``from_dict()`` for caching;
- :class:`ModelProvider`: the protocol (``complete``, ``stream``, ``name``), with
  :func:`collect` (stream to completion) and :func:`replay` (completion to stream);
- :class:`SimulatedProvider`: deterministic and offline, for tests and demos;
- :class:`OpenAICompatibleProvider`: any OpenAI-style chat completions API over httpx (imported on
  first use, so that httpx stays an optional dependency);
- :class:`PriceTable`: USD per call from a LiteLLM-shaped price table (an indicative one is
  bundled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rgruntime.providers.base import ModelProvider, collect, replay
from rgruntime.providers.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
    UnknownModelError,
)
from rgruntime.providers.pricing import ModelPrice, PriceTable
from rgruntime.providers.simulated import (
    SimulatedProvider,
    ToolScript,
    estimate_prompt_tokens,
    estimate_tokens,
)
from rgruntime.providers.types import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    Message,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    from rgruntime.providers.openai import OpenAICompatibleProvider

__all__ = [
    "Completion",
    "CompletionChunk",
    "CompletionRequest",
    "Message",
    "ModelPrice",
    "ModelProvider",
    "OpenAICompatibleProvider",
    "PriceTable",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderProtocolError",
    "ProviderTimeout",
    "SimulatedProvider",
    "ToolCall",
    "ToolCallDelta",
    "ToolScript",
    "ToolSpec",
    "UnknownModelError",
    "Usage",
    "collect",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "replay",
]


def __getattr__(name: str) -> Any:
    # httpx is an optional dependency: only the HTTP provider needs it.
    if name == "OpenAICompatibleProvider":
        from rgruntime.providers.openai import OpenAICompatibleProvider

        return OpenAICompatibleProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
