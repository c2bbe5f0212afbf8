"""Semantic response caching: answer a goal from the cached answer of a similar goal.

An agent turns it on with the guide's ``cache_config={"semantic_cache": {"enabled": True,
"similarity_threshold": 0.92, "embedding_model": ...}}`` (or by giving ``response_cache`` a
``similarity_threshold``). On an exact miss, the goal is looked up by meaning in the ``response``
layer's semantic index, in the partition of everything else that shapes the answer (agent,
version, model, temperature, tools and their schemas, system prompt, the session's conversation):
two agents, two models or two conversations never share a partition, so they never share an
answer. A fresh answer is indexed once the layer stored it. The index follows the layer
(:mod:`rgruntime.semantic.layer_index`): an answer that is evicted, expires or is invalidated
cannot be found by meaning either.

**Two modes.** With ``similarity_threshold`` (here or in ``response_cache``) a verified match at
least that similar is served (the static mode). Otherwise (the default) the agent states
``max_error_rate`` (default 0.02) and :class:`~rgruntime.semantic.error_bound.ErrorBoundPolicy`
decides per candidate: serve it, or *verify* it (the request runs as a miss, the fresh answer is
returned, and the judge says whether the cached answer would have been right: that outcome is
what the policy learns from), or treat it as a miss. The policy is the agent's judge's own
(:func:`~rgruntime.semantic.judges.judge_identity`: the answer judge, ``"model"`` per model, a
custom callable by identity): a lenient judge never opens serving for agents that chose another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from rgruntime.agents.agent import Agent
from rgruntime.agents.config import DEFAULT_MAX_ERROR_RATE
from rgruntime.keys import stable_key
from rgruntime.providers.types import CompletionRequest, Message, Usage
from rgruntime.runtime.runtime import Runtime

if TYPE_CHECKING:
    from rgruntime.agents.models import ModelGateway
    from rgruntime.semantic.bounded import BoundedLookup, Pending
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.layer_index import LayerSemanticIndex

__all__ = ["SemanticResponses", "semantic_partition"]


#: Embedding models served by an OpenAI-compatible ``/v1/embeddings`` endpoint: they get the
#: client's ``base_url`` and ``api_key`` when it has them.
_OPENAI_MODELS: Final = frozenset(
    {"openai", "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
)


def semantic_partition(material: Mapping[str, Any]) -> str:
    """The partition of a response: its key material without the goal, hashed."""
    return stable_key("semantic:response", {k: v for k, v in material.items() if k != "goal"})


def uses_semantic_cache(agent: Agent) -> bool:
    config = agent.cache_config
    return config.caches_responses and (
        config.semantic_cache.enabled or config.response_cache.similarity_threshold is not None
    )


def threshold_of(agent: Agent) -> float | None:
    """The static mode's threshold: ``response_cache.similarity_threshold`` if set, else
    ``semantic_cache``'s; None in the error-bound mode."""
    config = agent.cache_config
    own = config.response_cache.similarity_threshold
    return own if own is not None else config.semantic_cache.similarity_threshold


def error_bound_of(agent: Agent) -> float | None:
    """The error-bound mode's bound (None in the static mode)."""
    semantic = agent.cache_config.semantic_cache
    if semantic.max_error_rate is not None:
        return semantic.max_error_rate
    return DEFAULT_MAX_ERROR_RATE if threshold_of(agent) is None else None


class SemanticResponses:
    """The client's semantic lookups of the ``response`` layer (one index per embedding model).

    ``embedder``: the model of agents whose ``semantic_cache`` names none (default: the local
    all-MiniLM-L6-v2). OpenAI embedding models use the client's ``base_url`` and ``api_key``
    (or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``); without them the first semantic lookup raises
    :class:`~rgruntime.semantic.EmbedderUnavailableError` naming what is missing.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        embedder: Embedder | str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self._runtime = runtime
        self._default = embedder if embedder is not None else "minilm"
        self._base_url = base_url
        self._api_key = api_key
        # Embedders this object made and must close (their HTTP clients), by model name.
        self._made: dict[str, Embedder] = {}

    def _embedder(self, agent: Agent) -> Embedder | str:
        name = agent.cache_config.semantic_cache.embedding_model
        if name is None:
            return self._default
        if name not in _OPENAI_MODELS:
            return name
        made = self._made.get(name)
        if made is None:
            from rgruntime.semantic.openai_embedder import OpenAIEmbedder

            model = "text-embedding-3-small" if name == "openai" else name
            made = OpenAIEmbedder(model=model, base_url=self._base_url, api_key=self._api_key)
            self._made[name] = made
        return made

    async def prepare(self, agent: Agent) -> None:
        """Start the index of an agent that caches by meaning: its embedder is made (and loaded)
        now, so that one that cannot run raises
        :class:`~rgruntime.semantic.EmbedderUnavailableError` at the agent's creation."""
        if uses_semantic_cache(agent):
            await self.index_for(agent)

    async def index_for(self, agent: Agent) -> LayerSemanticIndex:
        from rgruntime.semantic import semantic_index

        return await semantic_index(self._runtime, "response", embedder=self._embedder(agent))

    async def lookup(self, agent: Agent, partition: str, goal: str) -> BoundedLookup:
        """An answer to serve, a candidate to verify (the error-bound mode), or neither."""
        from rgruntime.semantic.bounded import BoundedLookup, bounded_lookup
        from rgruntime.semantic.judges import judge_identity

        index = await self.index_for(agent)
        bound = error_bound_of(agent)
        if bound is None:
            hit = await index.lookup(partition, goal, threshold=threshold_of(agent))
            return BoundedLookup(hit=hit)
        judge = judge_identity(agent.cache_config.semantic_cache.judge, agent.model)
        return await bounded_lookup(index, bound, partition, goal, judge)

    async def settle(
        self, agent: Agent, pending: Pending, fresh_answer: str, models: ModelGateway
    ) -> tuple[Usage, float]:
        """Judge a verified candidate against the fresh answer and teach the policy.

        Returns what the judge spent (``judge="model"``: one call to the agent's model), for the
        caller to add to the result's usage and cost.
        """
        from rgruntime.semantic.bounded import answer_text, settle
        from rgruntime.semantic.judges import AnswerJudge, model_judge_prompt, parse_verdict

        judge = agent.cache_config.semantic_cache.judge
        cached_answer = answer_text(pending.hit.value)
        spent: list[tuple[Usage, float]] = []

        async def verdict() -> object:
            if judge == "model":
                prompt = model_judge_prompt(pending.text, cached_answer, fresh_answer)
                request = CompletionRequest(
                    model=agent.model, messages=[Message("user", prompt)], temperature=0.0
                )
                call = await models.complete(request, cache=False)
                spent.append((call.completion.usage, call.cost))
                return parse_verdict(call.completion.text)
            chosen = AnswerJudge(pending.index.cache.embedder) if judge == "answer" else judge
            return await chosen(pending.text, cached_answer, fresh_answer)

        await settle(pending, verdict)
        return spent[0] if spent else (Usage(), 0.0)

    async def remember(self, agent: Agent, partition: str, key: str, goal: str) -> None:
        index = await self.index_for(agent)
        await index.add(partition, key, goal)

    async def aclose(self) -> None:
        for embedder in self._made.values():
            close = getattr(embedder, "aclose", None)
            if close is not None:
                await close()
        self._made.clear()
