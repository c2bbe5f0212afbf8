"""Model calls through the ``model`` layer (``client.models``).

A model output is cached per model under a key hashed from the provider and everything in the
request that shapes the answer (messages, temperature, tools and their schemas, stop, seed...),
so two agents asking the same model the same thing share one call. Concurrent identical calls
share one provider call (the layer's single flight). Answers that are empty, truncated
(``finish_reason="length"``) or filtered are returned but never cached; errors are never cached.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping

import attrs

from rgruntime.agents.savings import SavingsLedger
from rgruntime.errors import ConfigError
from rgruntime.keys import stable_key
from rgruntime.providers import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    ModelProvider,
    PriceTable,
    Usage,
    collect,
    replay,
)
from rgruntime.runtime.dependencies import record_read_of
from rgruntime.runtime.layer import Layer
from rgruntime.tools.scope import current_request, write_tags

__all__ = ["CachedCompletion", "ModelCall", "ModelGateway", "is_cacheable"]

#: Finish reasons whose answer is incomplete or withheld: never cached.
UNCACHEABLE_FINISH = frozenset({"length", "content_filter", "max_steps", "error"})


def is_cacheable(text: str, finish_reason: str | None, has_tool_calls: bool = False) -> bool:
    """Whether an answer is worth serving again: not empty, not truncated, not filtered."""
    return (bool(text.strip()) or has_tool_calls) and finish_reason not in UNCACHEABLE_FINISH


@attrs.frozen
class CachedCompletion:
    """What the ``model`` layer holds: the completion and what producing it cost (USD)."""

    completion: Completion
    cost: float


@attrs.frozen
class ModelCall:
    """One model call's outcome: the completion, whether the cache answered, what it cost now
    (zero on a hit) and what the hit saved."""

    completion: Completion
    cached: bool
    cost: float
    cost_saved: float = 0.0

    @property
    def tokens_saved(self) -> int:
        return self.completion.usage.total_tokens if self.cached else 0


class _Uncacheable(Exception):
    """Carries an answer that must reach every waiter but not the cache."""

    #: A handed-back answer, not a failure: the layer must not answer with a stale copy.
    stale_if_error = False

    def __init__(self, completion: Completion, cost: float) -> None:
        self.completion = completion
        self.cost = cost


class ModelGateway:
    """Routes requests to providers by model name and caches their answers."""

    def __init__(
        self,
        layer: Layer,
        default_provider: ModelProvider,
        providers: Mapping[str, ModelProvider],
        prices: PriceTable,
        ledger: SavingsLedger,
    ) -> None:
        self._layer = layer
        self._default = default_provider
        self._providers = dict(providers)
        self._prices = prices
        self._ledger = ledger

    def provider_for(self, model: str) -> ModelProvider:
        """The provider registered for ``model``, else the default provider."""
        return self._providers.get(model, self._default)

    def key(self, request: CompletionRequest) -> str:
        provider = self.provider_for(request.model)
        return stable_key(f"model:{request.model}", provider.name, request.key_material())

    def cost(self, completion: Completion, model: str) -> float:
        """USD for ``completion`` (priced by the model that answered, else the one asked)."""
        return self.cost_of(completion.model or model, completion.usage)

    def cost_of(self, model: str, usage: Usage) -> float:
        return self._prices.cost(model, usage)

    async def complete(
        self, request: CompletionRequest, *, cache: bool = True, ttl: float | str | None = None
    ) -> ModelCall:
        """The model's answer to ``request``, from the cache when it holds one."""
        provider = self.provider_for(request.model)
        key = self.key(request) if cache else ""
        if not cache or self._refreshing(key):
            completion = await provider.complete(request)
            return ModelCall(completion, cached=False, cost=self.cost(completion, request.model))
        ran_here = False

        async def produce() -> CachedCompletion:
            nonlocal ran_here
            ran_here = True
            completion = await provider.complete(request)
            cost = self.cost(completion, request.model)
            if not is_cacheable(
                completion.text, completion.finish_reason, bool(completion.tool_calls)
            ):
                raise _Uncacheable(completion, cost)
            return CachedCompletion(completion, cost)

        try:
            cached = await self._layer.get_or_load(
                key, produce, ttl=ttl, tags=write_tags([f"model:{request.model}"])
            )
        except _Uncacheable as answer:
            # Only the caller whose load ran it paid for it; the others shared its answer.
            return ModelCall(answer.completion, cached=False, cost=answer.cost if ran_here else 0.0)
        # Inside an execution (whichever runner asks), the answer depends on this output: if
        # the layer no longer holds it (an invalidation discarded the call while it ran, or
        # removed it since), the answer is returned but not cached.
        record_read_of(self._layer, key, cached)
        if ran_here:
            return ModelCall(cached.completion, cached=False, cost=cached.cost)
        self._ledger.record_hit("model", cached.completion.usage.total_tokens, cached.cost)
        return ModelCall(cached.completion, cached=True, cost=0.0, cost_saved=cached.cost)

    async def stream(
        self, request: CompletionRequest, *, cache: bool = True, ttl: float | str | None = None
    ) -> AsyncGenerator[CompletionChunk, None]:
        """Stream the answer; a cached answer replays as a stream, a fresh one is cached once
        it has streamed to the end (an abandoned stream caches nothing)."""
        key = self.key(request)
        cache = cache and not self._refreshing(key)
        if cache:
            hit = self._layer.get_nowait(key)
            if isinstance(hit, CachedCompletion):
                self._ledger.record_hit("model", hit.completion.usage.total_tokens, hit.cost)
                async with contextlib.aclosing(replay(hit.completion)) as chunks:
                    async for chunk in chunks:
                        yield chunk
                return
        received: list[CompletionChunk] = []
        provider = self.provider_for(request.model)
        async with contextlib.aclosing(provider.stream(request)) as chunks:
            async for chunk in chunks:
                received.append(chunk)
                yield chunk
        if not cache:
            return
        completion = await collect(_iterate(received), model=request.model)
        if is_cacheable(completion.text, completion.finish_reason, bool(completion.tool_calls)):
            cost = self.cost(completion, request.model)
            await self._layer.set(
                key,
                CachedCompletion(completion, cost),
                ttl=ttl,
                tags=write_tags([f"model:{request.model}"]),
            )

    def _refreshing(self, key: str) -> bool:
        # An answer recomputed after an invalidation asks the model again (once per run key),
        # past the cache: the output cached before stays for the other requests sharing it
        # (replacing it would remove their answers, which nothing invalidated).
        scope = current_request()
        return scope is not None and scope.take_refresh(self._layer.name, key)


async def _iterate(chunks: list[CompletionChunk]) -> AsyncGenerator[CompletionChunk, None]:
    for chunk in chunks:
        yield chunk


def check_providers(providers: object) -> Mapping[str, ModelProvider]:
    """Validate the client's ``providers={model name: provider}`` argument."""
    if providers is None:
        return {}
    if not isinstance(providers, Mapping):
        raise ConfigError("providers", providers, "a dict of model name to provider")
    for model, provider in providers.items():
        if not isinstance(model, str) or not isinstance(provider, ModelProvider):
            raise ConfigError(
                f"providers.{model}", provider, "a ModelProvider (complete(), stream(), name)"
            )
    return providers
