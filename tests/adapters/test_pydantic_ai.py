"""pydantic-ai (an Agent with OpenAIChatModel) through rgruntime's capability."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import rgruntime
from rgruntime.adapters import cache_controls
from rgruntime.adapters.pydantic_ai import RGCacheCapability
from rgruntime.errors import ConfigError
from tests.adapters.conftest import PARAPHRASE, QUESTION, UNRELATED, user_texts
from tests.providers.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

tool_runs: list[str] = []


def make_agent(
    client: AsyncOpenAI, capability: RGCacheCapability, *, instructions: str = "Be brief."
) -> Agent[None, str]:
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client))
    return Agent(model, instructions=instructions, capabilities=[capability])


def with_weather_tool(agent: Agent[None, str]) -> Agent[None, str]:
    @agent.tool_plain
    def get_weather(city: str, unit: str) -> str:
        """The weather in a city."""
        tool_runs.append(city)
        return f"21 degrees {unit} in {city}"

    return agent


def tool_call_ids(messages: list[Any]) -> list[str]:
    return [
        part.tool_call_id
        for message in messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]


async def test_same_request_twice_makes_one_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    capability = RGCacheCapability(runtime)
    agent = make_agent(openai_client, capability)
    first = await agent.run("What are your hours?")
    second = await agent.run("What are your hours?")
    assert len(fake.requests) == 1
    assert second.output == first.output == "Echo: What are your hours?"
    assert first.usage.total_tokens > 0
    assert second.usage.total_tokens == 0  # a hit reports no usage; the saving is recorded
    stats = capability.stats()
    assert (stats.requests, stats.exact_hits, stats.model_calls) == (2, 1, 1)
    assert stats.tokens_saved == first.usage.total_tokens


async def test_a_tool_run_is_replayed_with_fresh_call_ids(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    tool_runs.clear()
    agent = with_weather_tool(make_agent(openai_client, RGCacheCapability(runtime)))
    first = await agent.run("Weather in Paris?")
    second = await agent.run("Weather in Paris?")
    assert len(fake.requests) == 2  # the tool call, then the answer: once
    assert tool_runs == ["Paris", "Paris"]  # the tool is not cached unless asked
    assert second.output == first.output
    assert tool_call_ids(first.all_messages()) == ["call_abc123"]
    replayed = tool_call_ids(second.all_messages())
    assert len(replayed) == 1
    assert replayed[0] != "call_abc123"


async def test_chosen_tools_are_cached_in_the_tool_layer(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    tool_runs.clear()
    capability = RGCacheCapability(runtime, cache_tools=["get_weather"])
    agent = with_weather_tool(make_agent(openai_client, capability))
    await agent.run("Weather in Paris?")
    with cache_controls(read=False):  # the model is asked again; the tool result is refreshed
        await agent.run("Weather in Paris?")
    await agent.run("Weather in Paris, please?")  # another prompt, the same tool call: a hit
    assert tool_runs == ["Paris", "Paris"]
    assert capability.tool_stats().exact_hits == 1
    assert runtime.layer("tool").stats().entries == 1
    assert await runtime.invalidate(tags=["tool:get_weather"]) == 1


async def test_invalidation_by_tag_forces_a_fresh_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    agent = make_agent(openai_client, RGCacheCapability(runtime, tags=["faq"]))
    await agent.run("What are your hours?")
    await agent.run("What are your hours?")
    assert await runtime.invalidate(tags=["faq"]) == 1
    await agent.run("What are your hours?")
    assert len(fake.requests) == 2


async def test_a_paraphrase_is_served_by_meaning(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    capability = RGCacheCapability(runtime, semantic=True)
    agent = make_agent(openai_client, capability)
    first = await agent.run(QUESTION)
    paraphrased = await agent.run(PARAPHRASE)
    await agent.run(UNRELATED)
    assert paraphrased.output == first.output
    assert user_texts(fake) == [QUESTION, UNRELATED]
    assert capability.stats().semantic_hits == 1
    other = make_agent(openai_client, capability, instructions="Answer in French.")
    await other.run(PARAPHRASE)  # other instructions: another partition
    assert len(fake.requests) == 3


async def test_concurrent_identical_requests_make_one_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake.script = [Reply(delay=0.5)]
    capability = RGCacheCapability(runtime)
    agent = make_agent(openai_client, capability)
    outputs: list[str] = []

    async def ask() -> None:
        outputs.append((await agent.run("Refund policy?")).output)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(ask)
    assert len(fake.requests) == 1
    assert outputs == ["Echo: Refund policy?"] * 5
    assert (capability.stats().model_calls, capability.stats().joined) == (1, 4)


async def test_streamed_runs_are_cached(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    agent = make_agent(openai_client, RGCacheCapability(runtime))
    outputs = []
    for _ in range(2):
        async with agent.run_stream("Stream it") as result:
            outputs.append(await result.get_output())
    assert outputs == ["Echo: Stream it"] * 2
    assert len(fake.requests) == 1
    assert fake.requests[0].body["stream"] is True


async def test_truncated_answers_are_returned_but_not_cached(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Once"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    fake.script = [Reply(body=body)]
    capability = RGCacheCapability(runtime)
    agent = make_agent(openai_client, capability)
    assert (await agent.run("Write an essay")).output == "Once"
    await agent.run("Write an essay")
    assert len(fake.requests) == 2
    assert capability.stats().uncacheable == 1


def test_cache_tools_must_be_a_list_of_names() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            with pytest.raises(ConfigError, match="cache_tools"):
                RGCacheCapability(runtime, cache_tools="get_weather")

    anyio.run(main)
