"""Everything where time matters, in virtual time: trio's MockClock and a looptime asyncio loop
jump the clock ahead whenever every task sleeps, so these tests wait for nothing and assert
exact (virtual) durations."""

from __future__ import annotations

import contextlib
import functools
import itertools
from typing import Any

import anyio
import pytest

from rgruntime.providers import (
    Completion,
    CompletionRequest,
    Message,
    ProviderHTTPError,
    ProviderTimeout,
    SimulatedProvider,
    Usage,
    collect,
    estimate_tokens,
    replay,
)

from .conftest import virtual_time_backend
from .fake_openai import FakeOpenAI, Reply, in_process

pytestmark = pytest.mark.anyio

# looptime counts time in microseconds (rounding each sleep up): allow for it.
approx = functools.partial(pytest.approx, abs=1e-3)

REQUEST = CompletionRequest("sim-small", [Message("user", "What is a cache?")])


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return virtual_time_backend(request.param)


async def test_the_clock_is_virtual() -> None:
    start = anyio.current_time()
    await anyio.sleep(3600)
    assert anyio.current_time() - start == approx(3600)


# --- the simulated provider ----------------------------------------------------------------------


async def test_latency_without_a_token_rate() -> None:
    provider = SimulatedProvider(latency=0.25)
    start = anyio.current_time()
    await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(0.25)


async def test_generation_time_follows_tokens_per_second() -> None:
    provider = SimulatedProvider(latency=0.5, tokens_per_second=20)
    start = anyio.current_time()
    completion = await provider.complete(REQUEST)
    expected = 0.5 + completion.usage.completion_tokens / 20
    assert anyio.current_time() - start == approx(expected)


async def test_a_stream_takes_as_long_and_spreads_tokens_over_chunks() -> None:
    provider = SimulatedProvider(latency=0.5, tokens_per_second=20, chunk_size=8)
    completion = await provider.complete(REQUEST)
    start = anyio.current_time()
    async with contextlib.aclosing(provider.stream(REQUEST)) as chunks:
        arrivals = [(anyio.current_time() - start, chunk) async for chunk in chunks]
    # Time to first token is the latency plus the first chunk's share of the generation time.
    per_char = completion.usage.completion_tokens / 20 / len(completion.text)
    first_time, first = arrivals[0]
    assert first_time == approx(0.5 + len(first.text_delta) * per_char)
    assert arrivals[-1][0] == approx(0.5 + completion.usage.completion_tokens / 20)
    assert len(arrivals) == -(-len(completion.text) // 8) + 1
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(arrivals))


async def test_latency_applies_to_failures_too() -> None:
    provider = SimulatedProvider(latency=2, fail_first=1)
    start = anyio.current_time()
    with pytest.raises(ProviderHTTPError):
        await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(2)


async def test_concurrent_calls_overlap() -> None:
    provider = SimulatedProvider(latency=1)
    start = anyio.current_time()
    async with anyio.create_task_group() as tasks:
        for i in range(10):
            tasks.start_soon(
                provider.complete, CompletionRequest("sim-small", [Message("user", str(i))])
            )
    assert anyio.current_time() - start == approx(1)
    assert provider.calls == 10


async def test_replay_delay_paces_the_stream() -> None:
    completion = Completion("x" * 10, (), Usage(1, estimate_tokens("x" * 10)), "stop", "m")
    start = anyio.current_time()
    assert await collect(replay(completion, chunk_size=5, delay=0.1)) == completion
    assert anyio.current_time() - start == approx(0.3)  # two text chunks and the last


# --- retries and timeouts of the HTTP provider (in process, no socket) ---------------------------


async def test_429_with_retry_after_waits_what_the_server_asks() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})]
    async with in_process(fake, max_retries=2) as provider:
        start = anyio.current_time()
        completion = await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(7)
    assert completion.text == "Echo: What is a cache?"
    assert len(fake.requests) == 2


async def test_retry_after_ms_is_preferred() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(429, {}, {"Retry-After": "7", "retry-after-ms": "1500"})]
    async with in_process(fake) as provider:
        start = anyio.current_time()
        await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(1.5)


async def test_5xx_backoff_is_exponential_with_jitter() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(500, {"error": {"message": "oops"}}) for _ in range(3)]
    async with in_process(fake, max_retries=3, backoff=1, max_backoff=100) as provider:
        start = anyio.current_time()
        await provider.complete(REQUEST)
    waited = anyio.current_time() - start
    # Waits of 50-100% of 1, 2 and 4 seconds.
    assert 3.5 <= waited <= 7
    assert len(fake.requests) == 4


async def test_backoff_is_capped() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(503, {}) for _ in range(4)]
    async with in_process(fake, max_retries=4, backoff=1, max_backoff=1.5) as provider:
        start = anyio.current_time()
        await provider.complete(REQUEST)
    assert anyio.current_time() - start <= 1 + 3 * 1.5


async def test_retries_run_out() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(502, {"error": {"message": "bad gateway"}}) for _ in range(5)]
    async with in_process(fake, max_retries=2, backoff=0.1) as provider:
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(REQUEST)
    assert caught.value.status == 502
    assert caught.value.body_excerpt == "bad gateway"
    assert len(fake.requests) == 3


async def test_a_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(429, {"error": {"message": "quota"}}, {"Retry-After": "3600"})]
    async with in_process(fake, max_retry_after=60) as provider:
        start = anyio.current_time()
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(0)
    assert caught.value.retry_after == 3600
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_client_errors_are_not_retried(status: int) -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(status, {"error": {"message": "no"}})]
    async with in_process(fake, max_retries=5) as provider:
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(REQUEST)
    assert caught.value.status == status
    assert not caught.value.retryable
    assert len(fake.requests) == 1


async def test_a_stream_is_retried_before_its_first_chunk() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(429, {}, {"Retry-After": "2"})]
    async with in_process(fake) as provider:
        start = anyio.current_time()
        completion = await collect(provider.stream(REQUEST))
    assert anyio.current_time() - start == approx(2)
    assert completion.text == "Echo: What is a cache?"


async def test_a_slow_answer_times_out_after_timeout_seconds() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(delay=1000)]
    async with in_process(fake, timeout=5, max_retries=3) as provider:
        start = anyio.current_time()
        with pytest.raises(ProviderTimeout) as caught:
            await provider.complete(REQUEST)
    assert anyio.current_time() - start == approx(5)
    assert "5 s" in str(caught.value)
    assert len(fake.requests) == 1  # a read timeout is not retried: the server may be working


async def test_a_slow_stream_times_out_too() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(delay=1000)]
    async with in_process(fake, timeout=5) as provider:
        with pytest.raises(ProviderTimeout):
            await collect(provider.stream(REQUEST))
