"""The OpenAI-compatible provider over real loopback sockets: the fake server runs in hypercorn
inside the test's task group, on asyncio and on trio. Delays are kept small and nothing asserts a
wall-clock duration; each test has a generous deadline so that a hang fails instead of blocking."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from rgruntime.providers import (
    CompletionRequest,
    Message,
    OpenAICompatibleProvider,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
    ToolSpec,
    collect,
)

from .fake_openai import API_KEY, FakeOpenAI, Reply, serve

pytestmark = pytest.mark.anyio

# See test_openai.py: httpx's inner generators, dropped when a stream is closed early.
HTTPX_ABANDONED_GENERATORS = pytest.mark.filterwarnings(
    r"ignore:Async generator 'http(x|core)\.:ResourceWarning"
)

WEATHER = ToolSpec("get_weather", "Weather in a city", {"type": "object"})
DEADLINE = 30


def ask(text: str = "Hello", **options: Any) -> CompletionRequest:
    return CompletionRequest("gpt-4o", [Message("user", text)], **options)


@contextlib.asynccontextmanager
async def provider_for(fake: FakeOpenAI, **options: Any) -> AsyncIterator[OpenAICompatibleProvider]:
    options.setdefault("api_key", API_KEY)
    options.setdefault("backoff", 0.01)
    with anyio.fail_after(DEADLINE):
        async with serve(fake) as url, OpenAICompatibleProvider(url, **options) as provider:
            yield provider


async def test_answers_tool_calls_and_streams_over_a_socket() -> None:
    fake = FakeOpenAI()
    async with provider_for(fake) as provider:
        text = await provider.complete(ask("Hi"))
        assert text.text == "Echo: Hi"
        assert await collect(provider.stream(ask("Hi"))) == text
        tool_request = ask("Weather?", tools=[WEATHER])
        call = await provider.complete(tool_request)
        assert call.tool_calls[0].name == "get_weather"
        assert await collect(provider.stream(tool_request)) == call
    assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_concurrent_calls_share_the_client() -> None:
    fake = FakeOpenAI()
    results: dict[int, str] = {}
    async with provider_for(fake) as provider:

        async def one(i: int) -> None:
            results[i] = (await provider.complete(ask(f"question {i}"))).text

        async with anyio.create_task_group() as tasks:
            for i in range(20):
                tasks.start_soon(one, i)
    assert results == {i: f"Echo: question {i}" for i in range(20)}


async def test_429_then_success() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.05"})]
    async with provider_for(fake) as provider:
        assert (await provider.complete(ask())).text == "Echo: Hello"
    assert len(fake.requests) == 2


async def test_5xx_until_retries_run_out() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(500, {"error": {"message": "internal"}}) for _ in range(3)]
    async with provider_for(fake, max_retries=2) as provider:
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(ask())
    assert (caught.value.status, caught.value.body_excerpt) == (500, "internal")
    assert len(fake.requests) == 3


async def test_malformed_json() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(body='{"choices": [')]
    async with provider_for(fake) as provider:
        with pytest.raises(ProviderProtocolError, match="not JSON"):
            await provider.complete(ask())


async def test_a_slow_answer_times_out() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(delay=DEADLINE * 2)]
    async with provider_for(fake, timeout=0.3) as provider:
        with pytest.raises(ProviderTimeout):
            await provider.complete(ask())
        fake.release()
        # The provider is still usable after a timeout.
        assert (await provider.complete(ask())).text == "Echo: Hello"


async def test_a_stalled_stream_times_out_between_events() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(event_delay=DEADLINE * 2)]
    async with provider_for(fake, timeout=0.3) as provider:
        with pytest.raises(ProviderTimeout):
            await collect(provider.stream(ask()))


async def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    url = f"http://127.0.0.1:{port}/v1"
    with anyio.fail_after(DEADLINE):
        async with OpenAICompatibleProvider(url, API_KEY, max_retries=2, backoff=0.01) as provider:
            with pytest.raises(ProviderConnectionError) as caught:
                await provider.complete(ask())
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert API_KEY not in str(caught.value)


async def stop_early(provider: OpenAICompatibleProvider, request: CompletionRequest) -> int:
    received = 0
    async with contextlib.aclosing(provider.stream(request)) as chunks:
        async for _ in chunks:
            received += 1
            if received == 3:
                break
    return received


@HTTPX_ABANDONED_GENERATORS
async def test_closing_a_stream_mid_way_closes_the_connection() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(event_delay=0.01)]
    long_question = "word " * 400  # the echo streams in ~500 events
    # One connection at most: had the stream leaked it, the next call could not get one.
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=5)
    async with client, provider_for(fake, client=client) as provider:
        assert await stop_early(provider, ask(long_question)) == 3
        # The server sees the disconnect and stops sending.
        await fake.stream_ended.wait()
        assert fake.events_sent < 100
        assert (await provider.complete(ask())).text == "Echo: Hello"


@HTTPX_ABANDONED_GENERATORS
async def test_cancelling_a_stream_mid_way_closes_the_connection() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(event_delay=0.01)]
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=5)
    async with client, provider_for(fake, client=client) as provider:
        received = 0
        async with anyio.create_task_group() as tasks:

            async def consume() -> None:
                nonlocal received
                async with contextlib.aclosing(provider.stream(ask("word " * 400))) as chunks:
                    async for _ in chunks:
                        received += 1
                        if received == 3:
                            tasks.cancel_scope.cancel()

            tasks.start_soon(consume)
        assert received == 3
        await fake.stream_ended.wait()
        assert fake.events_sent < 100
        assert (await provider.complete(ask())).text == "Echo: Hello"
