"""LiteLLM (litellm.acompletion over the fake server) with rgruntime as its cache backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import litellm
import pytest

import rgruntime
from rgruntime.adapters.litellm import RGLiteLLMCache, rg_litellm_cache
from tests.adapters.conftest import API_KEY, PARAPHRASE, QUESTION, UNRELATED, user_texts
from tests.providers.fake_openai import FakeOpenAI, Reply

pytestmark = [
    pytest.mark.anyio,
    # LiteLLM 1.110 builds a pydantic schema of a TypedDict with ReadOnly items on its first call.
    pytest.mark.filterwarnings("ignore:Item.* using the `ReadOnly` qualifier:UserWarning"),
]


@pytest.fixture(autouse=True)
def restore_litellm_cache() -> Iterator[None]:
    previous = litellm.cache
    yield
    litellm.cache = previous


def install(runtime: rgruntime.Runtime, **options: Any) -> RGLiteLLMCache:
    litellm.cache = rg_litellm_cache(runtime, **options)
    backend = litellm.cache.cache
    assert isinstance(backend, RGLiteLLMCache)
    return backend


async def stored(backend: RGLiteLLMCache, count: int) -> None:
    """Wait until ``count`` answers are stored: LiteLLM stores them from a callback it runs in
    the background, after the call has returned."""
    with anyio.fail_after(10):
        while backend.stats().stored < count:  # noqa: ASYNC110 - LiteLLM signals nothing
            await anyio.sleep(0.01)


async def ask(base_url: str, text: str, **options: Any) -> Any:
    return await litellm.acompletion(
        model="openai/gpt-4o-mini",
        api_base=base_url,
        api_key=API_KEY,
        messages=[{"role": "user", "content": text}],
        **options,
    )


async def test_same_request_twice_makes_one_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    backend = install(runtime)
    first = await ask(base_url, "What are your hours?")
    second = await ask(base_url, "What are your hours?")
    assert len(fake.requests) == 1
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second._hidden_params.get("cache_hit") is True
    assert first.usage.total_tokens > 0
    assert second.usage.total_tokens == 0  # a hit reports no usage; the saving is recorded
    stats = backend.stats()
    # LiteLLM stores an answer from a success callback it runs in the background: the second
    # call may arrive first and wait for it (joined) instead of finding it (exact).
    assert (stats.hits, stats.model_calls) == (1, 1)
    assert stats.tokens_saved == first.usage.total_tokens


async def test_invalidation_by_tag_forces_a_fresh_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    install(runtime, tags=["faq"])
    await ask(base_url, "What are your hours?")
    await ask(base_url, "What are your hours?", cache={"namespace": "tenant-1"})
    assert await runtime.invalidate(tags=["namespace:tenant-1"]) == 1
    await ask(base_url, "What are your hours?")  # still cached
    assert len(fake.requests) == 2
    assert await runtime.invalidate(tags=["faq"]) == 1
    await ask(base_url, "What are your hours?")
    assert len(fake.requests) == 3


async def test_litellm_cache_controls_are_honoured(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    backend = install(runtime)
    await ask(base_url, "One", cache={"no-store": True})
    await ask(base_url, "One")  # nothing was stored
    await ask(base_url, "One", cache={"no-cache": True})  # not looked up: a call
    await ask(base_url, "One")
    assert len(fake.requests) == 3
    await ask(base_url, "Two", cache={"ttl": 120})
    await stored(backend, 3)  # "One" twice (the no-cache call replaced it), "Two"
    assert runtime.layer("model").stats().entries == 2


async def test_a_paraphrase_is_served_by_meaning(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    backend = install(runtime, semantic=True)
    first = await ask(base_url, QUESTION)
    await stored(backend, 1)
    paraphrased = await ask(base_url, PARAPHRASE)
    await ask(base_url, UNRELATED)
    await stored(backend, 2)
    assert paraphrased.choices[0].message.content == first.choices[0].message.content
    assert user_texts(fake) == [QUESTION, UNRELATED]
    assert backend.stats().semantic_hits == 1
    await ask(base_url, PARAPHRASE, temperature=0.5)  # other settings: another partition
    assert len(fake.requests) == 3


async def test_concurrent_identical_requests_make_one_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    fake.script = [Reply(delay=0.5)]
    backend = install(runtime)
    answers: list[str] = []

    async def one() -> None:
        answers.append((await ask(base_url, "Refund policy?")).choices[0].message.content)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(one)
    assert len(fake.requests) == 1
    assert answers == ["Echo: Refund policy?"] * 5
    assert (backend.stats().model_calls, backend.stats().joined) == (1, 4)


async def test_streams_are_cached_and_replayed_as_streams(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    backend = install(runtime)
    texts = []
    for _ in range(2):
        stream = await ask(base_url, "Stream it", stream=True)
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream]
        texts.append("".join(pieces))
        await stored(backend, 1)
    assert texts == ["Echo: Stream it"] * 2
    assert len(fake.requests) == 1
    assert fake.requests[0].body["stream"] is True
