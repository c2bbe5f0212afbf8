"""OpenAI Agents (openai-agents' Runner and OpenAIChatCompletionsModel) through rgruntime."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallItem, ToolCallOutputItem
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent

import rgruntime
from rgruntime.adapters import cache_controls
from rgruntime.adapters.openai_agents import CachedModel
from rgruntime.errors import ConfigError
from tests.adapters.conftest import PARAPHRASE, QUESTION, UNRELATED, user_texts
from tests.providers.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI
    yield
    set_tracing_disabled(False)


def cached_model(client: AsyncOpenAI, runtime: rgruntime.Runtime, **options: object) -> CachedModel:
    inner = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
    return CachedModel(inner, runtime, **options)  # type: ignore[arg-type]


tool_runs: list[str] = []


@function_tool
def get_weather(city: str, unit: str) -> str:
    """The weather in a city."""
    tool_runs.append(city)
    return f"21 degrees {unit} in {city}"


async def test_same_request_twice_makes_one_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    model = cached_model(openai_client, runtime)
    agent = Agent(name="FAQ", instructions="Answer briefly.", model=model)
    first = await Runner.run(agent, "What are your hours?")
    second = await Runner.run(agent, "What are your hours?")
    assert len(fake.requests) == 1
    assert second.final_output == first.final_output == "Echo: What are your hours?"
    spent = first.context_wrapper.usage
    assert spent.requests == 1
    assert spent.total_tokens > 0
    # A hit reports no usage to the run; the saving is recorded.
    assert second.context_wrapper.usage.total_tokens == 0
    assert second.context_wrapper.usage.requests == 0
    stats = model.stats()
    assert (stats.requests, stats.exact_hits, stats.model_calls) == (2, 1, 1)
    assert stats.tokens_saved == spent.total_tokens


async def test_instructions_and_settings_are_part_of_the_key(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    model = cached_model(openai_client, runtime)
    await Runner.run(Agent(name="A", instructions="One.", model=model), "Hi")
    await Runner.run(Agent(name="A", instructions="Two.", model=model), "Hi")
    await Runner.run(Agent(name="A", instructions="Two.", model=model, tools=[get_weather]), "Hi")
    assert len(fake.requests) == 4  # the last agent called its tool, then answered


async def test_a_tool_run_replays_with_fresh_call_ids(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    """Both turns of a second identical run are hits (ids in the input are keyed by order), the
    tool runs again, and every replayed tool call carries a new id."""
    tool_runs.clear()
    agent = Agent(name="Weather", model=cached_model(openai_client, runtime), tools=[get_weather])
    first = await Runner.run(agent, "Weather in Paris?")
    second = await Runner.run(agent, "Weather in Paris?")
    assert len(fake.requests) == 2  # the tool call, then the answer: once
    assert tool_runs == ["Paris", "Paris"]
    assert second.final_output == first.final_output

    def call_ids(result: object) -> list[str]:
        items = result.new_items  # type: ignore[attr-defined]
        calls = [item.raw_item.call_id for item in items if isinstance(item, ToolCallItem)]
        outputs = [
            item.raw_item["call_id"] for item in items if isinstance(item, ToolCallOutputItem)
        ]
        assert calls == outputs  # each output answers its call
        return calls

    assert call_ids(first) == ["call_abc123"]  # the fake model's id
    replayed = call_ids(second)
    assert len(replayed) == 1
    assert replayed[0] != "call_abc123"
    third = await Runner.run(agent, "Weather in Paris?")
    assert call_ids(third)[0] not in {"call_abc123", replayed[0]}


async def test_invalidation_by_tag_forces_a_fresh_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    agent = Agent(name="FAQ", model=cached_model(openai_client, runtime, tags=["faq"]))
    await Runner.run(agent, "What are your hours?")
    await Runner.run(agent, "What are your hours?")
    assert await runtime.invalidate(tags=["faq"]) == 1
    await Runner.run(agent, "What are your hours?")
    assert len(fake.requests) == 2
    assert await runtime.invalidate(tags=["openai_agents"]) == 1


async def test_a_paraphrase_is_served_by_meaning(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    model = cached_model(openai_client, runtime, semantic=True)
    agent = Agent(name="Support", instructions="Help users.", model=model)
    first = await Runner.run(agent, QUESTION)
    paraphrased = await Runner.run(agent, PARAPHRASE)
    await Runner.run(agent, UNRELATED)
    assert paraphrased.final_output == first.final_output
    assert user_texts(fake) == [QUESTION, UNRELATED]
    assert model.stats().semantic_hits == 1
    other = Agent(name="Support", instructions="Help admins.", model=model)
    await Runner.run(other, PARAPHRASE)  # other instructions: another partition
    assert len(fake.requests) == 3


async def test_concurrent_identical_requests_make_one_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake.script = [Reply(delay=0.5)]
    model = cached_model(openai_client, runtime)
    agent = Agent(name="FAQ", model=model)
    outputs: list[str] = []

    async def ask() -> None:
        outputs.append((await Runner.run(agent, "Refund policy?")).final_output)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(ask)
    assert len(fake.requests) == 1
    assert outputs == ["Echo: Refund policy?"] * 5
    assert (model.stats().model_calls, model.stats().joined) == (1, 4)


async def test_streams_are_cached_and_replayed_as_streams(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    model = cached_model(openai_client, runtime)
    # include_usage: the Chat Completions stream reports usage only when asked to.
    agent = Agent(name="FAQ", model=model, model_settings=ModelSettings(include_usage=True))

    async def stream() -> tuple[str, str, int]:
        result = Runner.run_streamed(agent, "Tell me about streams")
        deltas = [
            event.data.delta
            async for event in result.stream_events()
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
        ]
        return "".join(deltas), str(result.final_output), result.context_wrapper.usage.total_tokens

    text, output, tokens = await stream()
    replayed_text, replayed_output, replayed_tokens = await stream()
    assert len(fake.requests) == 1
    assert fake.requests[0].body["stream"] is True
    assert replayed_text == text == output == replayed_output == "Echo: Tell me about streams"
    assert tokens > 0
    assert replayed_tokens == 0
    # A streamed answer serves a plain run too, and the other way round.
    plain = await Runner.run(agent, "Tell me about streams")
    assert plain.final_output == output
    await Runner.run(agent, "Plain first")
    result = Runner.run_streamed(agent, "Plain first")
    _ = [event async for event in result.stream_events()]
    assert result.final_output == "Echo: Plain first"
    assert len(fake.requests) == 2


async def test_cache_controls_refresh_and_skip(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    agent = Agent(name="FAQ", model=cached_model(openai_client, runtime))
    with cache_controls(write=False):
        await Runner.run(agent, "One")
    await Runner.run(agent, "One")
    with cache_controls(read=False):
        await Runner.run(agent, "One")
    await Runner.run(agent, "One")
    assert len(fake.requests) == 3


async def test_model_errors_reach_every_waiter_and_are_not_cached(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake.script = [Reply(status=400, body={"error": {"message": "bad"}}, delay=0.3)]
    agent = Agent(name="FAQ", model=cached_model(openai_client, runtime))
    errors: list[str] = []

    async def ask() -> None:
        try:
            await Runner.run(agent, "Hello")
        except Exception as error:
            errors.append(type(error).__name__)

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(ask)
    assert errors == ["BadRequestError"] * 3
    assert (await Runner.run(agent, "Hello")).final_output == "Echo: Hello"
    assert len(fake.requests) == 2


def test_wrapping_something_else_is_refused() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            with pytest.raises(ConfigError, match="agents Model"):
                CachedModel("gpt-4o", runtime)  # type: ignore[arg-type]

    anyio.run(main)
