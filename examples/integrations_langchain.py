"""LangChain with rgruntime as its LLM cache: repeats, paraphrases, tags, concurrent requests.

Needs: pip install 'rgruntime[langchain,semantic]' langchain-openai
Run: python examples/integrations_langchain.py (asyncio only, as LangChain)
"""

from __future__ import annotations

import asyncio

from integrations_local_model import local_model
from langchain_openai import ChatOpenAI

import rgruntime
from rgruntime.adapters import cache_controls
from rgruntime.adapters.langchain import RGLangChainCache


async def main() -> None:
    with local_model() as server:
        async with rgruntime.open_runtime({"max_size": "100MB"}) as runtime:
            cache = RGLangChainCache(runtime, semantic=True, tags=["support"])
            model = ChatOpenAI(
                model="gpt-4o-mini",
                base_url=server.url,
                api_key="local",
                cache=cache,  # type: ignore[arg-type]
            )

            first = await model.ainvoke("How do I reset my password?")
            again = await model.ainvoke("How do I reset my password?")
            print(f"same question twice, model calls: {server.calls}")
            print(f"replayed message has a new id: {again.id != first.id}")
            print(f"replayed usage: {again.usage_metadata}")

            paraphrase = await model.ainvoke("How can I reset my password?")
            note = paraphrase.response_metadata["rgruntime"]
            print(f"paraphrase served by meaning: {note['match']} ({note['similarity']:.3f})")

            with cache_controls(tags=["support:billing"]):
                await model.ainvoke("Where is my invoice?")
            removed = await runtime.invalidate(tags=["support:billing"])
            await model.ainvoke("Where is my invoice?")
            print(f"invalidate(tags=['support:billing']) removed {removed}")
            print(f"model calls: {server.calls}")

            calls = server.calls
            await asyncio.gather(*(model.ainvoke("What is the refund policy?") for _ in range(5)))
            print(f"5 concurrent identical requests, model calls: {server.calls - calls}")
            print(f"tokens saved: {cache.stats().tokens_saved}")


if __name__ == "__main__":
    asyncio.run(main())
