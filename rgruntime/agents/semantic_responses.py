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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from rgruntime.agents.agent import Agent
from rgruntime.keys import stable_key
from rgruntime.runtime.runtime import Runtime

if TYPE_CHECKING:
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.layer_index import LayerSemanticIndex, SemanticHit

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


def threshold_of(agent: Agent) -> float:
    """``response_cache.similarity_threshold`` if set, else ``semantic_cache``'s."""
    config = agent.cache_config
    own = config.response_cache.similarity_threshold
    return own if own is not None else config.semantic_cache.similarity_threshold


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

    async def index_for(self, agent: Agent) -> LayerSemanticIndex:
        return await self._runtime.semantic_index("response", embedder=self._embedder(agent))

    async def lookup(self, agent: Agent, partition: str, goal: str) -> SemanticHit | None:
        index = await self.index_for(agent)
        return await index.lookup(partition, goal, threshold=threshold_of(agent))

    async def remember(self, agent: Agent, partition: str, key: str, goal: str) -> None:
        index = await self.index_for(agent)
        await index.add(partition, key, goal)

    async def aclose(self) -> None:
        for embedder in self._made.values():
            close = getattr(embedder, "aclose", None)
            if close is not None:
                await close()
        self._made.clear()
