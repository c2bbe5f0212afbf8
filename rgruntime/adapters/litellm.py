"""LiteLLM: a cache backend served by rgruntime (``pip install 'rgruntime[litellm]'``).

    import litellm
    from rgruntime.adapters.litellm import rg_litellm_cache

    async with rgruntime.open_runtime() as runtime:
        litellm.cache = rg_litellm_cache(runtime, semantic=True)   # on the runtime's event loop
        response = await litellm.acompletion(model="openai/gpt-4o-mini", messages=[...])

``rg_litellm_cache`` builds LiteLLM's own ``Cache`` around :class:`RGLiteLLMCache` (a LiteLLM
``BaseCache``), so LiteLLM keeps doing what it does for any backend: it builds the key from the
call's parameters (and ``namespace``), honours the per-call controls (``cache={"no-cache": True}``
skips the lookup, ``"no-store"`` the write, ``"ttl"`` sets the entry's TTL, ``"s-maxage"`` refuses
older entries, ``"namespace"`` prefixes the key), replays a cached answer as a stream when the
call streams, and stores a streamed answer once complete. With caching on, LiteLLM imports
``litellm.proxy``, which needs ``fastapi`` and ``soundfile`` (the extra installs them).

The backend adds rgruntime's side:

- entries are tagged ``litellm``, ``model:<model>``, ``namespace:<namespace>`` when the call has
  one, the backend's ``tags`` and :func:`rgruntime.adapters.cache_controls`' tags;
- identical requests arriving while the first runs wait for its answer (at most
  ``join_timeout`` seconds: a failed call never reaches a cache) instead of each calling;
- semantic matching (``semantic=True``) compares the last user message among requests whose
  other parameters give the same LiteLLM key;
- a hit's usage is zero (LiteLLM already prices a hit at zero); ``stats()`` records the tokens
  it saved.

Synchronous calls (``litellm.completion``) from a worker thread run the lookup on the runtime's
loop; on the loop's own thread they are served by exact key only, without waiting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from litellm.caching.base_cache import BaseCache
from litellm.caching.caching import Cache

from rgruntime.adapters.common import (
    DEFAULT_JOIN_TIMEOUT,
    AdapterCache,
    AdapterStats,
    CachedRequest,
    LoopBridge,
    cache_controls,
    split_last_user,
)

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.runtime import Runtime

__all__ = ["RGLiteLLMCache", "rg_litellm_cache"]

_ZERO_USAGE: Final = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _response_data(value: Any) -> dict[str, Any] | None:
    """The cached response as a dict (LiteLLM stores ``{"timestamp", "response"}``, the response
    as JSON text)."""
    response = value.get("response") if isinstance(value, Mapping) else None
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            return None
    return response if isinstance(response, dict) else None


def _tokens(value: Any) -> int:
    response = _response_data(value) or {}
    usage = response.get("usage")
    return int(usage.get("total_tokens") or 0) if isinstance(usage, Mapping) else 0


def _zeroed(value: Any) -> Any:
    """A hit as LiteLLM gets it: the stored entry with zero usage."""
    response = _response_data(value)
    if response is None or not isinstance(value, Mapping):
        return value
    was_text = isinstance(value.get("response"), str)
    response = {**response, "usage": dict(_ZERO_USAGE)}
    return {**value, "response": json.dumps(response) if was_text else response}


class RGLiteLLMCache(BaseCache):
    """A LiteLLM cache backend over an rgruntime layer (see the module documentation).

    Make it on the runtime's event loop, or pass ``loop=``. ``key_maker``: the LiteLLM ``Cache``
    whose key function partitions semantic matches (``rg_litellm_cache`` sets it).
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
        super().__init__()
        self._bridge = LoopBridge(loop, "RGLiteLLMCache")
        self.adapter = AdapterCache(
            cache,
            namespace="litellm",
            layer=layer,
            ttl=ttl,
            tags=tags,
            semantic=semantic,
            join_timeout=join_timeout,
        )
        self.key_maker: Cache | None = None

    def stats(self) -> AdapterStats:
        return self.adapter.stats()

    def _request(self, key: str, call: Mapping[str, Any]) -> CachedRequest:
        text, rest = split_last_user(call.get("messages"))
        partition: Any = None
        if text is not None and self.key_maker is not None:
            # LiteLLM's own key of the call with the text left out: every parameter LiteLLM
            # keys on, no more (its kwargs also carry ids and loggers that change per call).
            others = {
                name: value
                for name, value in call.items()
                if name not in {"litellm_params", "preset_cache_key", "cache_key"}
            }
            partition = self.key_maker.get_cache_key(**{**others, "messages": rest})
        else:
            text = None  # without LiteLLM's key function, no partition: exact matches only
        controls = call.get("cache") if isinstance(call.get("cache"), Mapping) else {}
        namespace = controls.get("namespace") if controls else None
        with cache_controls(tags=[f"namespace:{namespace}"] if namespace else []):
            return self.adapter.request(
                model=str(call.get("model") or "unknown"), exact=key, context=partition, text=text
            )

    @staticmethod
    def _ttl(call: Mapping[str, Any]) -> float | None:
        ttl = call.get("ttl")
        return float(ttl) if isinstance(ttl, int | float) and not isinstance(ttl, bool) else None

    # -- async: litellm.acompletion ------------------------------------------------------------

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        controls = kwargs.get("cache") if isinstance(kwargs.get("cache"), Mapping) else {}
        # A call that will not store must not make identical calls wait for it.
        join = not (controls or {}).get("no-store")
        outcome = await self.adapter.begin(self._request(key, kwargs), join=join)
        return None if outcome is None else _zeroed(outcome.value)

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        with cache_controls(ttl=self._ttl(kwargs)):
            request = self._request(key, kwargs)
        await self.adapter.finish(request, value, _tokens(value))

    async def async_set_cache_pipeline(
        self, cache_list: list[tuple[str, Any]], **kwargs: Any
    ) -> None:
        for key, value in cache_list:
            await self.async_set_cache(key, value, **kwargs)

    async def batch_cache_write(self, key: str, value: Any, **kwargs: Any) -> None:
        await self.async_set_cache(key, value, **kwargs)

    async def disconnect(self) -> None:
        """Nothing to close: the runtime belongs to whoever opened it."""

    async def test_connection(self) -> dict[str, Any]:
        open_ = self.adapter.runtime.is_open
        return {"status": "success" if open_ else "failed", "message": "rgruntime runtime"}

    # -- sync: litellm.completion --------------------------------------------------------------

    def get_cache(self, key: str, **kwargs: Any) -> Any:
        if self._bridge.on_loop():
            outcome = self.adapter.lookup_nowait(self._request(key, kwargs))
            return None if outcome is None else _zeroed(outcome.value)
        return self._bridge.wait(self.async_get_cache(key, **kwargs))

    def set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        if self._bridge.on_loop():
            with cache_controls(ttl=self._ttl(kwargs)):
                request = self._request(key, kwargs)
            self.adapter.store_nowait(request, value, _tokens(value))
            return
        self._bridge.wait(self.async_set_cache(key, value, **kwargs))


def rg_litellm_cache(
    cache: Runtime | ResonantGenesis,
    *,
    layer: str = "model",
    ttl: float | str | None = None,
    tags: Iterable[str] = (),
    semantic: bool | Mapping[str, Any] = False,
    join_timeout: float = DEFAULT_JOIN_TIMEOUT,
    **litellm_options: Any,
) -> Cache:
    """LiteLLM's ``Cache`` over an :class:`RGLiteLLMCache`: assign it to ``litellm.cache``.

    ``litellm_options`` go to LiteLLM's ``Cache`` (``mode``, ``namespace``,
    ``supported_call_types``, ``max_messages``...).
    """
    backend = RGLiteLLMCache(
        cache, layer=layer, ttl=ttl, tags=tags, semantic=semantic, join_timeout=join_timeout
    )
    wrapper = Cache(_backend=backend, **litellm_options)
    backend.key_maker = wrapper
    return wrapper
