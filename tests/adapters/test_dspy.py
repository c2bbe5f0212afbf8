"""DSPy (dspy.LM and dspy.Predict over the fake server) through rgruntime's dspy.cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import dspy
import pytest

import rgruntime
from rgruntime.adapters import cache_controls
from rgruntime.adapters.dspy import RGDSPyCache
from rgruntime.errors import ConfigError
from tests.adapters.conftest import API_KEY, PARAPHRASE, QUESTION, UNRELATED, user_texts
from tests.providers.fake_openai import FakeOpenAI, Reply, completion_json, default_answer

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def restore_dspy_cache() -> Iterator[None]:
    previous = dspy.cache
    yield
    dspy.cache = previous


@pytest.fixture
async def lm(base_url: str) -> AsyncIterator[dspy.LM]:
    model = dspy.LM("openai/gpt-4o-mini", api_base=base_url, api_key=API_KEY, num_retries=0)
    yield model
    await model.aclose()


def install(runtime: rgruntime.Runtime, **options: Any) -> RGDSPyCache:
    cache = RGDSPyCache(runtime, **options)
    dspy.cache = cache
    return cache


async def test_same_request_twice_makes_one_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    cache = install(runtime)
    first = await lm.acall("What are your hours?")
    second = await lm.acall("What are your hours?")
    assert len(fake.requests) == 1
    assert second == first == ["Echo: What are your hours?"]
    spent = lm.history[0]["usage"]["total_tokens"]
    assert spent > 0
    assert lm.history[1]["usage"] == {}  # DSPy's own way of saying: a hit, nothing spent
    stats = cache.stats()
    assert (stats.requests, stats.exact_hits, stats.model_calls) == (2, 1, 1)
    assert stats.tokens_saved == spent


async def test_settings_are_part_of_the_key(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    install(runtime)
    await lm.acall("Hi")
    await lm.acall("Hi", temperature=0.9)
    await lm.acall("Hi", rollout_id=1, temperature=0.9)
    assert len(fake.requests) == 3


async def test_a_predict_module_is_cached(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    answer = completion_json(
        default_answer({"model": "gpt-4o-mini", "messages": [{"content": ""}]})
    )
    answer["choices"][0]["message"]["content"] = (
        "[[ ## answer ## ]]\nNine to five.\n\n[[ ## completed ## ]]"
    )
    fake.script = [Reply(body=answer)]
    install(runtime)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        qa = dspy.Predict("question -> answer")
        first = await qa.acall(question="What are your hours?")
        second = await qa.acall(question="What are your hours?")
    assert first.answer == second.answer == "Nine to five."
    assert len(fake.requests) == 1


async def test_invalidation_by_tag_forces_a_fresh_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    install(runtime, tags=["faq"])
    await lm.acall("What are your hours?")
    await lm.acall("What are your hours?")
    assert await runtime.invalidate(tags=["faq"]) == 1
    await lm.acall("What are your hours?")
    assert len(fake.requests) == 2
    assert await runtime.invalidate(tags=["model:openai/gpt-4o-mini"]) == 1


async def test_a_paraphrase_is_served_by_meaning(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    cache = install(runtime, semantic=True)
    first = await lm.acall(QUESTION)
    paraphrased = await lm.acall(PARAPHRASE)
    await lm.acall(UNRELATED)
    assert paraphrased == first
    assert user_texts(fake) == [QUESTION, UNRELATED]
    assert cache.stats().semantic_hits == 1
    await lm.acall(PARAPHRASE, temperature=0.5)  # other settings: another partition
    assert len(fake.requests) == 3


async def test_concurrent_identical_requests_make_one_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    fake.script = [Reply(delay=0.5)]
    cache = install(runtime)
    answers: list[Any] = []

    async def ask() -> None:
        answers.append(await lm.acall("Refund policy?"))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(ask)
    assert len(fake.requests) == 1
    assert answers == [["Echo: Refund policy?"]] * 5
    assert (cache.stats().model_calls, cache.stats().joined) == (1, 4)


async def test_sync_calls_from_a_worker_thread_use_the_cache(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    cache = install(runtime)
    await lm.acall("Sync and async")  # async: DSPy keys it apart from the sync call
    first = await anyio.to_thread.run_sync(lm, "Sync and async")
    second = await anyio.to_thread.run_sync(lm, "Sync and async")
    assert first == second == ["Echo: Sync and async"]
    assert len(fake.requests) == 2
    assert cache.stats().exact_hits == 1
    await anyio.to_thread.run_sync(cache.reset_memory_cache)
    await anyio.to_thread.run_sync(lm, "Sync and async")
    assert len(fake.requests) == 3


async def test_cache_controls_skip_reading_or_storing(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, lm: dspy.LM
) -> None:
    install(runtime)
    with cache_controls(write=False):
        await lm.acall("One")
    await lm.acall("One")
    with cache_controls(read=False):
        await lm.acall("One")
    await lm.acall("One")
    assert len(fake.requests) == 3


def test_made_outside_an_event_loop_it_asks_for_the_loop() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            made = await anyio.to_thread.run_sync(lambda: _make(runtime))
            assert isinstance(made, ConfigError)
            assert "loop" in str(made)
            loop = asyncio.get_running_loop()
            assert await anyio.to_thread.run_sync(lambda: RGDSPyCache(runtime, loop=loop))

    anyio.run(main)


def _make(runtime: rgruntime.Runtime) -> object:
    try:
        return RGDSPyCache(runtime)
    except ConfigError as error:
        return error
