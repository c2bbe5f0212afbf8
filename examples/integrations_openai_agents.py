"""OpenAI Agents with rgruntime caching its model: a tool-using agent run twice, paraphrases,
tags, concurrent runs.

Needs: pip install 'rgruntime[openai-agents,semantic]'
Run: python examples/integrations_openai_agents.py (asyncio only, as the Agents SDK)
"""

from __future__ import annotations

import asyncio

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from integrations_local_model import local_model
from openai import AsyncOpenAI

import rgruntime
from rgruntime.adapters.openai_agents import CachedModel


@function_tool
def opening_hours(day: str) -> str:
    """The opening hours on a given day."""
    return f"9:00-17:00 on {day}"


async def main() -> None:
    set_tracing_disabled(True)  # the example stays offline
    with local_model() as server:
        async with (
            rgruntime.open_runtime() as runtime,
            AsyncOpenAI(base_url=server.url, api_key="local") as client,
        ):
            inner = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
            model = CachedModel(inner, runtime, semantic=True, tags=["faq"])
            agent = Agent(name="Support", instructions="Answer briefly.", model=model)

            first = await Runner.run(agent, "How do I reset my password?")
            again = await Runner.run(agent, "How do I reset my password?")
            print(f"same question twice, model calls: {server.calls}")
            print(f"second run's usage: {again.context_wrapper.usage.total_tokens} tokens")
            print(f"same answer: {again.final_output == first.final_output}")

            await Runner.run(agent, "How can I reset my password?")
            print(f"paraphrase served by meaning: {model.stats().semantic_hits == 1}")

            removed = await runtime.invalidate(tags=["faq"])
            await Runner.run(agent, "How do I reset my password?")
            print(f"invalidate(tags=['faq']) removed {removed}; model calls: {server.calls}")

            calls = server.calls
            await asyncio.gather(*(Runner.run(agent, "Refund policy?") for _ in range(5)))
            print(f"5 concurrent identical runs, model calls: {server.calls - calls}")
            print(f"tokens saved: {model.stats().tokens_saved}")


if __name__ == "__main__":
    asyncio.run(main())
