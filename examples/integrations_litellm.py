"""LiteLLM with rgruntime as its cache backend: repeats, paraphrases, tags, its cache controls,
concurrent calls.

Needs: pip install 'rgruntime[litellm,semantic]'
Run: python examples/integrations_litellm.py (asyncio only)
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download

import litellm
from integrations_local_model import local_model

import rgruntime
from rgruntime.adapters.litellm import rg_litellm_cache


async def main() -> None:
    with local_model() as server:
        async with rgruntime.open_runtime() as runtime:
            litellm.cache = rg_litellm_cache(runtime, semantic=True, tags=["faq"])
            backend = litellm.cache.cache

            async def ask(text: str, **options: object) -> str:
                stored = backend.stats().stored
                response = await litellm.acompletion(
                    model="openai/gpt-4o-mini",
                    api_base=server.url,
                    api_key="local",
                    messages=[{"role": "user", "content": text}],
                    **options,
                )
                # LiteLLM stores an answer from a callback it runs in the background, after the
                # call returned: wait for it (identical calls would wait anyway; paraphrases
                # need it indexed).
                controls = options.get("cache") or {}
                hit = response._hidden_params.get("cache_hit")
                if not hit and not controls.get("no-store"):  # type: ignore[attr-defined]
                    async with asyncio.timeout(30):
                        while backend.stats().stored == stored:  # noqa: ASYNC110 - no signal
                            await asyncio.sleep(0.01)
                return str(response.choices[0].message.content)

            await ask("How do I reset my password?")
            await ask("How do I reset my password?")
            print(f"same question twice, model calls: {server.calls}")

            await ask("How can I reset my password?")
            print(f"paraphrase served by meaning: {backend.stats().semantic_hits == 1}")

            await ask("How do I reset my password?", cache={"no-cache": True})
            print(f"cache={{'no-cache': True}} asked the model: {server.calls == 2}")

            removed = await runtime.invalidate(tags=["faq"])
            await ask("How do I reset my password?")
            print(f"invalidate(tags=['faq']) removed {removed}; model calls: {server.calls}")

            calls = server.calls
            await asyncio.gather(*(ask("Refund policy?") for _ in range(5)))
            print(f"5 concurrent identical calls, model calls: {server.calls - calls}")
            print(f"tokens saved: {backend.stats().tokens_saved}")


if __name__ == "__main__":
    asyncio.run(main())
