"""LangChain: a ``BaseCache`` backed by an rgruntime layer (``pip install 'rgruntime[langchain]'``).

    from langchain_core.globals import set_llm_cache
    from rgruntime.adapters.langchain import RGLangChainCache

    set_llm_cache(RGLangChainCache(runtime, semantic=True))   # or ChatOpenAI(cache=...)

LangChain asks ``alookup(prompt, llm_string)`` before a call and ``aupdate(...)`` after it, so:

- the key is LangChain's prompt (the messages serialized, their ids already removed) and its
  ``llm_string`` (the model's class and settings, stop words, call options); semantic matching
  compares the last human message among entries with the same settings and the same
  conversation before it;
- identical requests arriving while the first one runs wait for its ``aupdate`` (at most
  ``join_timeout`` seconds: a failed call is invisible to a cache) and are served its answer;
- **message ids**: LangChain returns a hit's messages as they were stored, so a replayed
  ``AIMessage`` would carry the id of the run that produced it, and a message list keyed by id
  (LangGraph's ``add_messages``) would overwrite the earlier message instead of appending the new
  one. Entries are stored without ids and every hit gets fresh ones;
- a hit's ``usage_metadata`` reports zero tokens; ``response_metadata["rgruntime"]`` says how it
  matched and how many tokens it saved (counted in the adapter's ``stats()``);
- streamed calls (``streaming=True``, or a streaming callback handler as LangGraph's
  ``stream_mode="messages"`` attaches) are cached once the stream has ended, and LangChain
  replays a hit as stream events to its v2 streaming handlers. A model's own ``astream()`` /
  ``astream_events()`` never consult a cache (LangChain calls the provider directly there).

Use LangChain's async API (``ainvoke``, ``abatch``, ``astream_events``) on the runtime's event
loop; the synchronous hooks work there too (exact matches only, no waiting).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.utils.utils import LC_ID_PREFIX

from rgruntime.adapters.common import (
    DEFAULT_JOIN_TIMEOUT,
    AdapterCache,
    AdapterStats,
    CachedRequest,
    Outcome,
    on_event_loop,
)
from rgruntime.errors import ConfigError

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.runtime import Runtime

__all__ = ["RGLangChainCache"]

#: Finish reasons of an answer cut short or withheld: returned, never cached.
_INCOMPLETE: Final = frozenset({"length", "content_filter", "max_tokens"})
_MODEL_NAME: Final = re.compile(r"""["'](?:model_name|model|model_id)["'][:,]\s*["']([^"']+)["']""")


def _model_of(llm_string: str) -> str:
    found = _MODEL_NAME.search(llm_string)
    return found.group(1) if found else "unknown"


def _split_prompt(prompt: str) -> tuple[str | None, Any]:
    """The last human message's text, and the prompt with that text left out (the context a
    paraphrase must share). A plain-text prompt (a completion model's) is all text."""
    try:
        messages = json.loads(prompt)
    except ValueError:
        return prompt, None
    if not isinstance(messages, list):
        return None, messages
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        kwargs = message.get("kwargs") if isinstance(message, dict) else None
        if isinstance(kwargs, dict) and kwargs.get("type") == "human":
            content = kwargs.get("content")
            if not isinstance(content, str):
                return None, messages
            context = [*messages[:index], {**message, "kwargs": {**kwargs, "content": None}}]
            return content, [*context, *messages[index + 1 :]]
    return None, messages


def _tokens(generations: Sequence[Generation]) -> int:
    total = 0
    for generation in generations:
        message = getattr(generation, "message", None)
        usage = getattr(message, "usage_metadata", None)
        if isinstance(usage, Mapping):
            total += int(usage.get("total_tokens") or 0)
    return total


def _cacheable(generations: Sequence[Generation]) -> bool:
    if not generations:
        return False
    for generation in generations:
        info = generation.generation_info or {}
        message = getattr(generation, "message", None)
        metadata = getattr(message, "response_metadata", None) or {}
        reason = info.get("finish_reason") or metadata.get("finish_reason")
        if reason in _INCOMPLETE:
            return False
        has_calls = bool(getattr(message, "tool_calls", None))
        if not generation.text.strip() and not has_calls:
            return False
    return True


def _stored(generations: Sequence[Generation]) -> tuple[Generation, ...]:
    """Copies without message ids (a later change to the caller's objects cannot reach them)."""
    copies = []
    for generation in generations:
        copy = generation.model_copy(deep=True)
        if isinstance(copy, ChatGeneration):
            copy.message.id = None
        copies.append(copy)
    return tuple(copies)


def _replayed(outcome: Outcome) -> list[Generation]:
    """A hit's generations: fresh copies with fresh message ids and zero usage."""
    replay_id = f"{LC_ID_PREFIX}-{uuid.uuid4()}"
    note = {
        "cached": True,
        "match": outcome.match,
        "similarity": outcome.similarity,
        "tokens_saved": outcome.tokens_saved,
    }
    generations: list[Generation] = []
    for index, stored in enumerate(outcome.value):
        generation = stored.model_copy(deep=True)
        message = getattr(generation, "message", None)
        if isinstance(message, AIMessage):
            message.id = f"{replay_id}-{index}"
            if message.usage_metadata is not None:
                message.usage_metadata = {
                    **message.usage_metadata,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "total_tokens": 0,
                }
            message.response_metadata = {**message.response_metadata, "rgruntime": note}
        generations.append(generation)
    return generations


class RGLangChainCache(BaseCache):
    """LangChain's LLM cache, served by an rgruntime layer (see the module documentation).

    ``cache``: a :class:`~rgruntime.Runtime` or a :class:`~rgruntime.ResonantGenesis` client.
    ``semantic``: ``True`` or a dict of semantic index options (``threshold``, ``embedder``...).
    ``tags``, ``ttl``: for every entry (:func:`rgruntime.adapters.cache_controls` adds per-call
    ones). Entries are tagged ``langchain`` and ``model:<model name>``.
    """

    def __init__(
        self,
        cache: Runtime | ResonantGenesis,
        *,
        layer: str = "model",
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        semantic: bool | Mapping[str, Any] = False,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
    ) -> None:
        self.cache = AdapterCache(
            cache,
            namespace="langchain",
            layer=layer,
            ttl=ttl,
            tags=tags,
            semantic=semantic,
            join_timeout=join_timeout,
        )

    def stats(self) -> AdapterStats:
        return self.cache.stats()

    def _request(self, prompt: str, llm_string: str) -> CachedRequest:
        text, context = _split_prompt(prompt)
        return self.cache.request(
            model=_model_of(llm_string),
            exact=[prompt, llm_string],
            context=[context, llm_string],
            text=text,
        )

    # -- async: what LangChain's async API calls -------------------------------------------------

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        outcome = await self.cache.begin(self._request(prompt, llm_string))
        return None if outcome is None else _replayed(outcome)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        await self.cache.finish(
            self._request(prompt, llm_string),
            _stored(return_val),
            _tokens(return_val),
            cacheable=_cacheable(return_val),
        )

    async def aclear(self, **kwargs: Any) -> None:
        """Remove this cache's entries; ``tags=[...]``: only those with any of these tags."""
        await self.cache.invalidate(tags=kwargs.get("tags"))

    # -- sync: on the runtime's event loop only ----------------------------------------------------

    def _require_loop(self, method: str) -> None:
        if not on_event_loop():
            raise ConfigError(
                f"RGLangChainCache.{method}",
                "called outside the event loop",
                "LangChain's async API (ainvoke, abatch, astream_events) on the runtime's loop",
            )

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self._require_loop("lookup")
        outcome = self.cache.lookup_nowait(self._request(prompt, llm_string))
        return None if outcome is None else _replayed(outcome)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self._require_loop("update")
        if _cacheable(return_val):
            request = self._request(prompt, llm_string)
            self.cache.store_nowait(request, _stored(return_val), _tokens(return_val))

    def clear(self, **kwargs: Any) -> None:
        raise ConfigError(
            "RGLangChainCache.clear", kwargs, "await cache.aclear() (invalidation is async)"
        )
