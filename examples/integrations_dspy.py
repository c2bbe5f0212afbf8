"""DSPy with rgruntime as dspy.cache: repeats, paraphrases, tags, concurrent calls.

Needs: pip install 'rgruntime[dspy,semantic]'
Run: python examples/integrations_dspy.py (asyncio only)
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download

import dspy
from integrations_local_model import local_model

import rgruntime
from rgruntime.adapters.dspy import RGDSPyCache


async def main() -> None:
    with local_model() as server:
        async with rgruntime.open_runtime() as runtime:
            cache = RGDSPyCache(runtime, semantic=True, tags=["faq"])
            dspy.cache = cache
            lm = dspy.LM("openai/gpt-4o-mini", api_base=server.url, api_key="local")

            await lm.acall("How do I reset my password?")
            await lm.acall("How do I reset my password?")
            print(f"same question twice, model calls: {server.calls}")
            print(f"second call's usage: {lm.history[-1]['usage']}")

            await lm.acall("How can I reset my password?")
            print(f"paraphrase served by meaning: {cache.stats().semantic_hits == 1}")

            removed = await runtime.invalidate(tags=["faq"])
            await lm.acall("How do I reset my password?")
            print(f"invalidate(tags=['faq']) removed {removed}; model calls: {server.calls}")

            calls = server.calls
            await asyncio.gather(*(lm.acall("Refund policy?") for _ in range(5)))
            print(f"5 concurrent identical calls, model calls: {server.calls - calls}")
            print(f"tokens saved: {cache.stats().tokens_saved}")
            await lm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
