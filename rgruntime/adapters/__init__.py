"""Adapters for the agent frameworks people already use: their cache or wrapper hook, backed by
rgruntime's layers (tags, hierarchical and dependency-tracked invalidation, single flight,
semantic matching, statistics).

Each adapter lives in its own module and imports its framework, so importing this package imports
none of them; install the one you use as an extra (``pip install 'rgruntime[langchain]'``):

- :mod:`rgruntime.adapters.langchain`: ``RGLangChainCache``, a LangChain ``BaseCache``;
- :mod:`rgruntime.adapters.openai_agents`: ``CachedModel``, an OpenAI Agents ``Model`` wrapper;
- :mod:`rgruntime.adapters.pydantic_ai`: ``RGCacheCapability``, a pydantic-ai capability;
- :mod:`rgruntime.adapters.dspy`: ``RGDSPyCache``, a ``dspy.clients.Cache``;
- :mod:`rgruntime.adapters.litellm`: ``RGLiteLLMCache``, a LiteLLM ``BaseCache``.

The frameworks run on asyncio only, and so do the adapters (rgruntime underneath stays
backend-neutral). What they share is :mod:`rgruntime.adapters.common`. See
``docs/integrations.md``.
"""

from rgruntime.adapters.common import (
    AdapterCache,
    AdapterStats,
    CachedRequest,
    Outcome,
    cache_controls,
)

__all__ = ["AdapterCache", "AdapterStats", "CachedRequest", "Outcome", "cache_controls"]
