"""LangChain (langchain-core's BaseCache, ChatOpenAI from langchain-openai) through rgruntime."""

from __future__ import annotations

import anyio
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

import rgruntime
from rgruntime.adapters import cache_controls
from rgruntime.adapters.langchain import RGLangChainCache
from rgruntime.errors import ConfigError
from tests.adapters.conftest import API_KEY, PARAPHRASE, QUESTION, UNRELATED, user_texts
from tests.providers.fake_openai import FakeOpenAI, Reply, completion_json, default_answer

pytestmark = pytest.mark.anyio


def chat(base_url: str, cache: RGLangChainCache, **options: object) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=base_url,
        api_key=API_KEY,  # type: ignore[arg-type]
        cache=cache,
        max_retries=0,
        **options,  # type: ignore[arg-type]
    )


async def test_same_request_twice_makes_one_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime)
    model = chat(base_url, cache)
    first = await model.ainvoke("What are your hours?")
    second = await model.ainvoke("What are your hours?")
    assert len(fake.requests) == 1
    assert second.content == first.content == "Echo: What are your hours?"
    assert first.usage_metadata is not None
    assert first.usage_metadata["total_tokens"] > 0
    # A hit reports no usage; the saving is recorded.
    assert second.usage_metadata is not None
    assert second.usage_metadata["total_tokens"] == 0
    saved = first.usage_metadata["total_tokens"]
    assert second.response_metadata["rgruntime"]["tokens_saved"] == saved
    stats = cache.stats()
    assert (stats.requests, stats.exact_hits, stats.model_calls) == (2, 1, 1)
    assert stats.tokens_saved == saved


async def test_other_settings_or_messages_are_other_entries(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime)
    await chat(base_url, cache).ainvoke("Hi")
    await chat(base_url, cache, temperature=0.7).ainvoke("Hi")
    await chat(base_url, cache).ainvoke([SystemMessage("Be brief."), HumanMessage("Hi")])
    await chat(base_url, cache).ainvoke("Hi", stop=["."])
    assert len(fake.requests) == 4


async def test_replayed_messages_get_fresh_ids(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    """A replayed message carrying the id of the run that produced it would replace that
    message in a history keyed by id (LangGraph's add_messages)."""
    model = chat(base_url, RGLangChainCache(runtime))
    answers = [await model.ainvoke("Tell me a joke") for _ in range(3)]
    assert len(fake.requests) == 1
    ids = [answer.id for answer in answers]
    assert all(ids)
    assert len(set(ids)) == 3
    assert all(answer.content == answers[0].content for answer in answers)


async def test_invalidation_by_tag_forces_a_fresh_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    model = chat(base_url, RGLangChainCache(runtime, tags=["faq"]))
    await model.ainvoke("What are your hours?")
    with cache_controls(tags=["faq:pricing"]):
        await model.ainvoke("How much is it?")
    assert await runtime.invalidate(tags=["faq:pricing"]) == 1  # a child tag: one entry
    await model.ainvoke("What are your hours?")
    assert len(fake.requests) == 2
    assert await runtime.invalidate(tags=["faq"]) == 1  # the parent: what is left
    await model.ainvoke("What are your hours?")
    await model.ainvoke("How much is it?")
    assert len(fake.requests) == 4
    assert await runtime.invalidate(tags=["model:gpt-4o-mini"]) == 2


async def test_a_paraphrase_is_served_by_meaning(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime, semantic={"threshold": 0.9})
    model = chat(base_url, cache)
    first = await model.ainvoke(QUESTION)
    paraphrased = await model.ainvoke(PARAPHRASE)
    assert paraphrased.content == first.content
    assert paraphrased.response_metadata["rgruntime"]["match"] == "semantic"
    await model.ainvoke(UNRELATED)  # close in wording, another question
    assert user_texts(fake) == [QUESTION, UNRELATED]
    assert cache.stats().semantic_hits == 1


async def test_paraphrases_do_not_cross_settings_or_conversations(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime, semantic=True)
    await chat(base_url, cache).ainvoke(QUESTION)
    await chat(base_url, cache, temperature=0.9).ainvoke(PARAPHRASE)
    await chat(base_url, cache).ainvoke(
        [SystemMessage("Answer in French."), HumanMessage(PARAPHRASE)]
    )
    assert len(fake.requests) == 3


async def test_without_semantic_a_paraphrase_is_a_model_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    model = chat(base_url, RGLangChainCache(runtime))
    await model.ainvoke(QUESTION)
    await model.ainvoke(PARAPHRASE)
    assert len(fake.requests) == 2


async def test_concurrent_identical_requests_make_one_call(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    fake.script = [Reply(delay=0.5)]  # the first call stays in flight while the others arrive
    cache = RGLangChainCache(runtime)
    model = chat(base_url, cache)
    answers: list[AIMessage] = []

    async def ask() -> None:
        answers.append(await model.ainvoke("What is the refund policy?"))  # type: ignore[arg-type]

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(ask)
    assert len(fake.requests) == 1
    assert {answer.content for answer in answers} == {"Echo: What is the refund policy?"}
    stats = cache.stats()
    assert (stats.model_calls, stats.joined) == (1, 4)


async def test_a_failed_call_releases_waiters_after_the_join_timeout(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    """A failure never reaches a cache: the waiter gives up its wait and calls the model."""
    fake.script = [Reply(status=400, body={"error": {"message": "bad"}}, delay=0.3)]
    model = chat(base_url, RGLangChainCache(runtime, join_timeout=0.5))
    outcomes: list[object] = []

    async def ask() -> None:
        try:
            outcomes.append((await model.ainvoke("Hello")).content)
        except Exception as error:  # the first call's 400
            outcomes.append(type(error).__name__)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ask)
            await anyio.sleep(0.05)
            tasks.start_soon(ask)
    assert len(fake.requests) == 2
    assert sorted(map(str, outcomes)) == ["Echo: Hello", "OpenAIInvalidRequestError"]


async def test_streamed_answers_are_cached_once_complete(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    model = chat(base_url, RGLangChainCache(runtime), streaming=True)
    first = await model.ainvoke("Stream this please")
    second = await model.ainvoke("Stream this please")
    assert len(fake.requests) == 1
    assert fake.requests[0].body["stream"] is True
    assert second.content == first.content == "Echo: Stream this please"


async def test_truncated_answers_are_returned_but_not_cached(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    truncated = completion_json(
        default_answer({"model": "gpt-4o-mini", "messages": [{"content": "x"}]})
    )
    truncated["choices"][0]["finish_reason"] = "length"
    fake.script = [Reply(body=truncated)]
    cache = RGLangChainCache(runtime)
    model = chat(base_url, cache)
    await model.ainvoke("Write an essay")
    await model.ainvoke("Write an essay")
    assert len(fake.requests) == 2
    assert cache.stats().uncacheable == 1


async def test_cache_controls_skip_reading_or_storing(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    model = chat(base_url, RGLangChainCache(runtime))
    with cache_controls(write=False):
        await model.ainvoke("One")
    await model.ainvoke("One")  # nothing was stored
    with cache_controls(read=False):
        await model.ainvoke("One")  # a refresh
    await model.ainvoke("One")  # served
    assert len(fake.requests) == 3


async def test_aclear_removes_this_caches_entries_only(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime)
    await runtime.layer("model").set("someone-else", 1)
    await chat(base_url, cache).ainvoke("One")
    await cache.aclear()
    await chat(base_url, cache).ainvoke("One")
    assert len(fake.requests) == 2
    assert await runtime.layer("model").get("someone-else") == 1


async def test_the_synchronous_hooks_work_on_the_loop(
    runtime: rgruntime.Runtime, fake: FakeOpenAI, base_url: str
) -> None:
    cache = RGLangChainCache(runtime)
    model = chat(base_url, cache)
    first = await model.ainvoke("Sync hooks")
    prompt_cache = cache.cache
    assert prompt_cache.stats().model_calls == 1
    # What LangChain's synchronous path calls, with the strings it would pass.
    llm_string = model._get_llm_string()
    from langchain_core.load import dumps

    hit = cache.lookup(dumps([HumanMessage("Sync hooks")]), llm_string)
    assert hit is not None
    assert hit[0].text == first.content
    with pytest.raises(ConfigError, match="aclear"):
        cache.clear()


def test_the_synchronous_hooks_refuse_another_thread() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            cache = RGLangChainCache(runtime)
            with pytest.raises(ConfigError, match="async API"):
                await anyio.to_thread.run_sync(cache.lookup, "prompt", "llm")

    anyio.run(main)


def test_bad_settings_name_the_field() -> None:
    async def main() -> None:
        async with rgruntime.open_runtime() as runtime:
            with pytest.raises(ConfigError, match="semantic"):
                RGLangChainCache(runtime, semantic="yes")  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match="join_timeout"):
                RGLangChainCache(runtime, join_timeout=-1)
            with pytest.raises(ConfigError, match="tags"):
                RGLangChainCache(runtime, tags="faq")

    anyio.run(main)
