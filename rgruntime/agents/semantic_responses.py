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
what the policy learns from), or treat it as a miss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from rgruntime.agents.agent import Agent
from rgruntime.agents.config import DEFAULT_MAX_ERROR_RATE
from rgruntime.keys import stable_key
from rgruntime.providers.types import CompletionRequest, Message, Usage
from rgruntime.runtime.runtime import Runtime

if TYPE_CHECKING:
    from rgruntime.agents.models import ModelGateway
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.error_bound import Decision
    from rgruntime.semantic.layer_index import LayerSemanticIndex, SemanticHit

__all__ = ["Pending", "SemanticLookup", "SemanticResponses", "semantic_partition"]


@attrs.frozen
class Pending:
    """A candidate being verified: judge its answer against the fresh one, then learn."""

    index: LayerSemanticIndex
    bound: float
    partition: str
    goal: str
    hit: SemanticHit
    decision: Decision


@attrs.frozen
class SemanticLookup:
    """What a semantic lookup found: an answer to serve, a candidate to verify, or neither."""

    hit: SemanticHit | None = None
    pending: Pending | None = None


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
        return await self._runtime.semantic_index("response", embedder=self._embedder(agent))

    async def lookup(self, agent: Agent, partition: str, goal: str) -> SemanticLookup:
        index = await self.index_for(agent)
        bound = error_bound_of(agent)
        if bound is None:
            return SemanticLookup(
                hit=await index.lookup(partition, goal, threshold=threshold_of(agent))
            )
        policy = index.error_bound(bound)
        hit = await index.lookup(partition, goal, threshold=policy.settings.floor)
        if hit is None:
            return SemanticLookup()
        decision = policy.decide(partition, hit.key, hit.similarity)
        if decision.action == "serve":
            return SemanticLookup(hit=hit)
        if decision.action == "verify":
            return SemanticLookup(pending=Pending(index, bound, partition, goal, hit, decision))
        return SemanticLookup()

    async def settle(
        self, agent: Agent, pending: Pending, fresh_answer: str, models: ModelGateway
    ) -> tuple[Usage, float]:
        """Judge a verified candidate against the fresh answer and teach the policy.

        Returns what the judge spent (``judge="model"``: one call to the agent's model), for the
        caller to add to the result's usage and cost.
        """
        judge = agent.cache_config.semantic_cache.judge
        cached_answer = _answer_text(pending.hit.value)
        usage, cost = Usage(), 0.0
        if judge == "model":
            from rgruntime.semantic.judges import model_judge_prompt, parse_verdict

            prompt = model_judge_prompt(pending.goal, cached_answer, fresh_answer)
            request = CompletionRequest(
                model=agent.model, messages=[Message("user", prompt)], temperature=0.0
            )
            call = await models.complete(request, cache=False)
            correct = parse_verdict(call.completion.text)
            usage, cost = call.completion.usage, call.cost
        elif judge == "answer":
            from rgruntime.semantic.judges import AnswerJudge

            correct = await AnswerJudge(pending.index.cache.embedder)(
                pending.goal, cached_answer, fresh_answer
            )
        else:
            correct = await judge(pending.goal, cached_answer, fresh_answer)
            if not isinstance(correct, bool):
                from rgruntime.errors import InvalidArgumentError

                raise InvalidArgumentError(
                    "semantic_cache.judge returned", correct, "True or False"
                )
        policy = pending.index.error_bound(pending.bound)
        policy.record(pending.partition, pending.hit.key, pending.decision, correct)
        return usage, cost

    async def remember(self, agent: Agent, partition: str, key: str, goal: str) -> None:
        index = await self.index_for(agent)
        await index.add(partition, key, goal)

    async def aclose(self) -> None:
        for embedder in self._made.values():
            close = getattr(embedder, "aclose", None)
            if close is not None:
                await close()
        self._made.clear()


def _answer_text(value: Any) -> str:
    """The text of a cached response (a ``CachedResponse``), or its ``str``."""
    output = getattr(value, "output", None)
    return output if isinstance(output, str) else str(value)
