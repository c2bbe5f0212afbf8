"""The ``model`` layer: agents share model calls; ``client.models.complete`` and ``stream``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from rgruntime import ResonantGenesis, RunContext
from rgruntime.providers import (
    CompletionChunk,
    CompletionRequest,
    Message,
    SimulatedProvider,
    Usage,
    collect,
)

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

GOAL = "What is the capital of France?"


def ask(text: str, **options: object) -> CompletionRequest:
    return CompletionRequest("sim-small", [Message("user", text)], **options)  # type: ignore[arg-type]


async def stream_all(client: ResonantGenesis, request: CompletionRequest) -> list[CompletionChunk]:
    async with contextlib.aclosing(client.models.stream(request)) as chunks:
        return [chunk async for chunk in chunks]


async def from_list(chunks: list[CompletionChunk]) -> AsyncIterator[CompletionChunk]:
    for chunk in chunks:
        yield chunk


async def test_two_agents_with_the_same_model_and_prompt_share_one_call(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    researcher = await client.agents.create(name="Researcher")
    writer = await client.agents.create(name="Writer")
    fresh = await client.sessions.execute(agent_id=researcher.id, goal=GOAL)
    shared = await client.sessions.execute(agent_id=writer.id, goal=GOAL)

    assert provider.calls == 1
    assert (shared.cached, shared.layer, shared.match) == (True, "model", "exact")
    assert shared.output == fresh.output
    assert shared.cache_key != fresh.cache_key  # each agent has answers of its own
    assert (shared.usage, shared.cost) == (Usage(), 0.0)
    assert shared.tokens_saved == fresh.usage.total_tokens
    assert shared.cost_saved == pytest.approx(fresh.cost)
    assert client.cache.get_savings().layers["model"].hits == 1


@pytest.mark.parametrize(
    "difference",
    [{"model": "sim-large"}, {"temperature": 0.7}, {"system_prompt": "Answer in French."}],
    ids=["model", "temperature", "system prompt"],
)
async def test_agents_asking_differently_do_not_share(
    client: ResonantGenesis, provider: SimulatedProvider, difference: dict[str, object]
) -> None:
    first = await client.agents.create(name="First")
    second = await client.agents.create(name="Second", **difference)  # type: ignore[arg-type]
    await client.sessions.execute(agent_id=first.id, goal=GOAL)
    result = await client.sessions.execute(agent_id=second.id, goal=GOAL)
    assert (result.cached, provider.calls) == (False, 2)


async def test_a_user_runner_completes_through_the_model_cache(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    async def runner(context: RunContext) -> str:
        completion = await context.complete()
        return completion.text.upper()

    framework = await client.agents.create(name="Framework", runner=runner)
    plain = await client.agents.create(name="Plain")
    from_plain = await client.sessions.execute(agent_id=plain.id, goal=GOAL)
    from_runner = await client.sessions.execute(agent_id=framework.id, goal=GOAL)

    assert provider.calls == 1
    assert from_runner.output == from_plain.output.upper()
    # The one model call was answered by the model cache: no call reached the provider.
    assert (from_runner.layer, from_runner.model_calls) == ("model", 0)


async def test_complete_caches_the_answer(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    fresh = await client.models.complete(ask("What is a cache?"))
    hit = await client.models.complete(ask("What is a cache?"))
    assert provider.calls == 1
    assert (fresh.cached, hit.cached) == (False, True)
    assert hit.completion == fresh.completion
    assert (hit.cost, hit.cost_saved) == (0.0, pytest.approx(fresh.cost))
    assert hit.tokens_saved == fresh.completion.usage.total_tokens > 0


async def test_complete_without_cache_calls_every_time(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    for _ in range(2):
        call = await client.models.complete(ask("What is a cache?"), cache=False)
        assert call.cached is False
    assert provider.calls == 2
    assert client.cache.get_stats().layers["model"].entries == 0


async def test_a_cached_stream_replays_the_same_answer(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    request = ask("Explain caching in one paragraph.")
    streamed = await stream_all(client, request)
    replayed = await stream_all(client, request)
    assert provider.calls == 1
    assert len(replayed) > 1  # a stream, not one block

    original, replay = await collect(from_list(streamed)), await collect(from_list(replayed))
    assert original.text
    assert replay.text == original.text
    assert replay.usage == original.usage
    assert original.usage.total_tokens > 0
    assert replay.finish_reason == original.finish_reason == "stop"
    # The streamed answer serves complete() too.
    assert (await client.models.complete(request)).cached is True
    assert provider.calls == 1


async def test_an_abandoned_stream_caches_nothing(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    request = ask("Explain caching in one paragraph.")
    async with contextlib.aclosing(client.models.stream(request)) as chunks:
        async for _ in chunks:
            break
    assert client.cache.get_stats().layers["model"].entries == 0
    call = await client.models.complete(request)
    assert (call.cached, provider.calls) == (False, 2)


async def test_a_truncated_stream_is_not_cached(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    request = ask("Explain caching in one paragraph.", max_tokens=2)
    chunks = await stream_all(client, request)
    assert (await collect(from_list(chunks))).finish_reason == "length"
    await stream_all(client, request)
    assert provider.calls == 2
