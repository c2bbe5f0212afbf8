"""pydantic-ai with rgruntime's capability: cached model responses and tool results.

Needs: pip install 'rgruntime[pydantic-ai,semantic]'
Run: python examples/integrations_pydantic_ai.py (asyncio only, as pydantic-ai)
"""

from __future__ import annotations

import asyncio

from integrations_local_model import local_model
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import rgruntime
from rgruntime.adapters.pydantic_ai import RGCacheCapability


async def main() -> None:
    with local_model() as server:
        async with (
            rgruntime.open_runtime() as runtime,
            AsyncOpenAI(base_url=server.url, api_key="local") as client,
        ):
            model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client))
            cache = RGCacheCapability(runtime, semantic=True, tags=["faq"])
            agent = Agent(model, instructions="Answer briefly.", capabilities=[cache])

            await agent.run("How do I reset my password?")
            again = await agent.run("How do I reset my password?")
            print(f"same question twice, model calls: {server.calls}")
            print(f"second run's usage: {again.usage.total_tokens} tokens")

            await agent.run("How can I reset my password?")
            print(f"paraphrase served by meaning: {cache.stats().semantic_hits == 1}")

            removed = await runtime.invalidate(tags=["faq"])
            await agent.run("How do I reset my password?")
            print(f"invalidate(tags=['faq']) removed {removed}; model calls: {server.calls}")

            calls = server.calls
            await asyncio.gather(*(agent.run("Refund policy?") for _ in range(5)))
            print(f"5 concurrent identical runs, model calls: {server.calls - calls}")
            print(f"tokens saved: {cache.stats().tokens_saved}")


if __name__ == "__main__":
    asyncio.run(main())
