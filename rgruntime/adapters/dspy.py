"""DSPy: a ``dspy.clients.Cache`` backed by rgruntime (``pip install 'rgruntime[dspy]'``).

    import dspy
    from rgruntime.adapters.dspy import RGDSPyCache

    async with rgruntime.open_runtime() as runtime:
        dspy.cache = RGDSPyCache(runtime, semantic=True)   # made on the runtime's event loop
        answer = await dspy.Predict("question -> answer").acall(question="...")

DSPy calls its cache synchronously: ``get(request)`` before a model call and ``put(request,
value)`` after it, from a worker thread for async calls (``acall``, ``aforward``) and from the
caller's thread for sync ones. From any thread but the event loop's, the adapter runs the lookup
on the runtime's loop and waits for it, so:

- the key is DSPy's own (its hash of the request without ``api_key``, ``api_base`` and
  ``base_url``: the model, messages, settings, ``rollout_id``...); semantic matching compares the
  last user message among requests agreeing on everything else;
- identical requests arriving while the first runs wait for its ``put`` (at most
  ``join_timeout`` seconds: a failed call never reaches a cache) and get its answer;
- a hit comes back as DSPy's own hits do (usage empty, ``cache_hit`` set, no usage tracked); the
  adapter's ``stats()`` records the tokens it saved.

Called on the event loop's own thread (a sync DSPy call inside a coroutine), the adapter cannot
wait for the loop it runs on: it serves exact matches there and neither waits nor matches by
meaning. DSPy streams (``dspy.streamify``) bypass the cache hook.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from dspy.clients.cache import Cache

from rgruntime.adapters.common import (
    DEFAULT_JOIN_TIMEOUT,
    AdapterCache,
    AdapterStats,
    CachedRequest,
    LoopBridge,
    jsonable,
    split_last_user,
)
from rgruntime.errors import ConfigError

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.runtime import Runtime

__all__ = ["RGDSPyCache"]

#: What DSPy leaves out of its own keys (``dspy.clients.lm``): where and as whom, not what.
_IGNORED: Final = ("api_key", "api_base", "base_url")
_INCOMPLETE: Final = frozenset({"length", "content_filter"})


def _split(request: dict[str, Any]) -> tuple[str | None, Any]:
    """The last user message's text, and the request with that text left out (DSPy's LiteLLM
    requests hold ``messages``; its native ones a ``request`` holding them, with ``parts``)."""
    inner = request.get("request")
    if not isinstance(inner, Mapping):
        text, messages = split_last_user(request.get("messages"))
        return text, {**request, "messages": messages}
    text, messages = split_last_user(inner.get("messages"), content_keys=("content", "parts"))
    return text, {**request, "request": {**inner, "messages": messages}}


def _usage_tokens(value: Any) -> int:
    usage = value.get("usage") if isinstance(value, Mapping) else getattr(value, "usage", None)
    if isinstance(usage, Mapping):
        return int(usage.get("total_tokens") or 0)
    return int(getattr(usage, "total_tokens", 0) or 0)


def _cacheable(value: Any) -> bool:
    if isinstance(value, Mapping):
        responses = value.get("responses") or ()
        reasons = {response.get("finish_reason") for response in responses}
        return bool(value.get("outputs")) and not reasons & _INCOMPLETE
    choices = getattr(value, "choices", None) or ()
    return bool(choices) and not {getattr(c, "finish_reason", None) for c in choices} & _INCOMPLETE


class RGDSPyCache(Cache):
    """DSPy's cache, served by an rgruntime layer (see the module documentation).

    Make it on the runtime's event loop (it remembers the loop), or pass ``loop=``.
    ``cache``: a :class:`~rgruntime.Runtime` or :class:`~rgruntime.ResonantGenesis`;
    ``semantic``, ``ttl``, ``tags``, ``layer``, ``join_timeout``: as
    :class:`~rgruntime.adapters.AdapterCache`. Entries are tagged ``dspy`` and ``model:<model>``.
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
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # DSPy's own memory and disk tiers stay off: the runtime is the cache.
        super().__init__(enable_disk_cache=False, enable_memory_cache=False, disk_cache_dir=None)
        self._bridge = LoopBridge(loop, "RGDSPyCache")
        self.adapter = AdapterCache(
            cache,
            namespace="dspy",
            layer=layer,
            ttl=ttl,
            tags=tags,
            semantic=semantic,
            join_timeout=join_timeout,
        )

    def stats(self) -> AdapterStats:
        return self.adapter.stats()

    def _request(self, request: dict[str, Any], ignored: list[str] | None) -> CachedRequest:
        left_out = {*_IGNORED, *(ignored or ())}
        kept = {key: value for key, value in request.items() if key not in left_out}
        text, context = _split(jsonable(kept))
        inner = kept.get("request")
        model = kept.get("model") or (inner.get("model") if isinstance(inner, Mapping) else None)
        return self.adapter.request(
            model=str(model or "unknown"),
            exact=self.cache_key(request, sorted(left_out)),
            context=context,
            text=text,
        )

    def get(
        self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None
    ) -> Any:
        cached = self._request(request, ignored_args_for_cache_key)
        if self._bridge.on_loop():
            outcome = self.adapter.lookup_nowait(cached)
        else:
            outcome = self._bridge.wait(self.adapter.begin(cached))
        # A copy: DSPy changes what it is given (usage, cache_hit), the cache keeps the original.
        return None if outcome is None else copy.deepcopy(outcome.value)

    def put(
        self,
        request: dict[str, Any],
        value: Any,
        ignored_args_for_cache_key: list[str] | None = None,
        enable_memory_cache: bool = True,
    ) -> None:
        cached = self._request(request, ignored_args_for_cache_key)
        stored, tokens = copy.deepcopy(value), _usage_tokens(value)
        if self._bridge.on_loop():
            if _cacheable(value):
                self.adapter.store_nowait(cached, stored, tokens)
            return
        self._bridge.wait(self.adapter.finish(cached, stored, tokens, cacheable=_cacheable(value)))

    def reset_memory_cache(self) -> None:
        """Remove this cache's entries (DSPy's own name for clearing its memory tier)."""
        if self._bridge.on_loop():
            raise ConfigError(
                "RGDSPyCache.reset_memory_cache",
                "called on the event loop",
                "await cache.adapter.invalidate() there",
            )
        self._bridge.wait(self.adapter.invalidate())
