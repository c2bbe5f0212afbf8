"""Tool results cached with ``strategy="semantic"`` and no threshold: the error-bound mode.

Real clocks and the real local model (embedding runs in worker threads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import rgruntime
from rgruntime.semantic import semantic_index, semantic_stats
from rgruntime.tools import cache, cache_info

pytestmark = pytest.mark.anyio

RESET = "How do I reset my password?"
RESET_AGAIN = "How can I reset my password?"  # 0.99 on all-MiniLM-L6-v2
FAR = "Resetting my password: how does it work?"  # 0.81


def docs_tool(calls: list[str], **options: Any) -> Callable[[str], Awaitable[str]]:
    """A tool cached by meaning (under the default error bound unless ``options`` say
    otherwise), recording what it ran. Two tools made here share their results unless their
    ``options`` give them different names."""

    @cache(strategy="semantic", **options)
    async def lookup_docs(query: str) -> str:
        calls.append(query)
        return f"docs for {query}"

    return lookup_docs


async def test_a_cold_index_runs_and_judges_even_a_close_paraphrase() -> None:
    calls: list[str] = []
    lookup_docs = docs_tool(calls)

    async with rgruntime.open_runtime() as runtime:
        await lookup_docs(RESET)
        # Cold at 2%: nothing has been judged yet, so nothing is served by meaning.
        assert await lookup_docs(RESET_AGAIN) == f"docs for {RESET_AGAIN}"
        bounds = semantic_stats(runtime)["tool:minilm"].error_bound
    # No option: the default bound and the answer judge, under the key they always had.
    assert list(bounds) == ["0.02"]
    stats = bounds["0.02"]
    assert calls == [RESET, RESET_AGAIN]
    assert (stats.served, stats.verified, stats.judged) == (0, 1, 1)
    assert stats.threshold is None
    # The answer judge: the two results' embeddings are within its bar (0.95), so right.
    assert stats.judged_wrong == 0


async def test_once_outcomes_prove_a_similarity_a_close_paraphrase_is_served() -> None:
    calls: list[str] = []
    lookup_docs = docs_tool(calls)

    async with rgruntime.open_runtime() as runtime:
        first = await lookup_docs(RESET)
        policy = (await semantic_index(runtime, "tool")).error_bound(0.02)
        # What earlier verified candidates would have taught it: 200 right at 0.97.
        for number in range(200):
            policy.record("earlier", f"earlier-{number}", 0.97, True)
        assert await lookup_docs(RESET_AGAIN) == first
        # 0.81: below what was proven, above the floor: verified (run), and its judgement learned.
        fresh = await lookup_docs(FAR)
        stats = semantic_stats(runtime)["tool:minilm"].error_bound["0.02"]
    assert calls == [RESET, FAR]
    assert fresh == f"docs for {FAR}"
    assert (stats.served, stats.verified) == (1, 1)
    assert (stats.judged, stats.judged_wrong) == (201, 1)


def test_no_option_means_the_default_bound_and_the_answer_judge() -> None:
    info = cache_info(docs_tool([]))
    assert info is not None
    assert (info.settings.max_error_rate, info.settings.judge) == (None, "answer")


async def test_a_chosen_bound_decides_and_keeps_its_evidence_under_its_own_key() -> None:
    calls: list[str] = []
    lookup_docs = docs_tool(calls, max_error_rate=0.05, name="docs_within_5pc")

    default_calls: list[str] = []
    default_tool = docs_tool(default_calls)

    async with rgruntime.open_runtime() as runtime:
        first = await lookup_docs(RESET)
        await default_tool(RESET)
        # Outcomes that prove 0.97 under 5%, taught to that bound only.
        policy = (await semantic_index(runtime, "tool")).error_bound(0.05)
        for number in range(200):
            policy.record("earlier", f"earlier-{number}", 0.97, True)
        assert await lookup_docs(RESET_AGAIN) == first  # served by meaning, under 5%
        # The default tool's bound (2%) learned nothing of it: verified, run.
        assert await default_tool(RESET_AGAIN) == f"docs for {RESET_AGAIN}"
        bounds = semantic_stats(runtime)["tool:minilm"].error_bound
    assert calls == [RESET]
    assert default_calls == [RESET, RESET_AGAIN]
    assert list(bounds) == ["0.05", "0.02"]
    assert (bounds["0.05"].max_error_rate, bounds["0.05"].served) == (0.05, 1)
    assert (bounds["0.02"].served, bounds["0.02"].verified, bounds["0.02"].judged) == (0, 1, 1)


async def test_a_chosen_bound_learns_from_its_own_verifications() -> None:
    calls: list[str] = []
    lookup_docs = docs_tool(calls, max_error_rate=0.05, name="docs_within_5pc")

    async with rgruntime.open_runtime() as runtime:
        await lookup_docs(RESET)
        assert await lookup_docs(RESET_AGAIN) == f"docs for {RESET_AGAIN}"  # cold: verified
        bounds = semantic_stats(runtime)["tool:minilm"].error_bound
    assert calls == [RESET, RESET_AGAIN]
    assert list(bounds) == ["0.05"]
    stats = bounds["0.05"]
    assert (stats.served, stats.verified, stats.judged, stats.judged_wrong) == (0, 1, 1, 0)


async def test_a_custom_judge_is_asked_with_the_tools_texts_and_learns_apart() -> None:
    seen: list[tuple[str, str, str]] = []
    calls: list[str] = []

    async def strict(query: str, cached_result: str, fresh_result: str) -> bool:
        seen.append((query, cached_result, fresh_result))
        return False

    @cache(strategy="semantic", max_error_rate=0.05, judge=strict)
    async def lookup_docs(query: str) -> list[str]:
        calls.append(query)
        return [f"docs for {query}"]

    async with rgruntime.open_runtime() as runtime:
        await lookup_docs(RESET)
        assert await lookup_docs(RESET_AGAIN) == [f"docs for {RESET_AGAIN}"]
        bounds = semantic_stats(runtime)["tool:minilm"].error_bound
    assert calls == [RESET, RESET_AGAIN]
    # The results' texts (a non-str result: its str), the cached one first.
    assert seen == [(RESET_AGAIN, f"['docs for {RESET}']", f"['docs for {RESET_AGAIN}']")]
    # Its verdict is learned by a policy of its own, named after it.
    assert list(bounds) == [f"0.05 judge={strict.__qualname__}"]
    stats = bounds[f"0.05 judge={strict.__qualname__}"]
    assert (stats.verified, stats.judged, stats.judged_wrong, stats.served) == (1, 1, 1, 0)


async def test_a_lenient_judge_opens_serving_for_its_own_tools_only() -> None:
    async def lenient(query: str, cached_result: str, fresh_result: str) -> bool:
        return True  # every cached result "would have been right"

    lenient_calls: list[str] = []
    lookup_docs = docs_tool(
        lenient_calls,
        judge=lenient,
        name="leniently_judged_docs",
        tags=lambda query: ["again"] if query == RESET_AGAIN else [],
    )
    default_calls: list[str] = []
    default_tool = docs_tool(default_calls)

    async with rgruntime.open_runtime() as runtime:
        first = await lookup_docs(RESET)
        # Its probation: 100 verified candidates, each judged right (the fresh result is removed
        # each time, so that the paraphrase is a candidate again, not an entry of its own).
        for _ in range(100):
            assert await lookup_docs(RESET_AGAIN) == f"docs for {RESET_AGAIN}"
            assert await runtime.invalidate(tags=["again"]) == 1
        assert await lookup_docs(RESET_AGAIN) == first
        # A tool judged by the answer judge, on the same layer, is on probation of its own.
        await default_tool(RESET)
        assert await default_tool(RESET_AGAIN) == f"docs for {RESET_AGAIN}"
        bounds = semantic_stats(runtime)["tool:minilm"].error_bound
    assert lenient_calls == [RESET] + [RESET_AGAIN] * 100
    assert default_calls == [RESET, RESET_AGAIN]
    assert list(bounds) == ["0.02", f"0.02 judge={lenient.__qualname__}"]
    lenients = bounds[f"0.02 judge={lenient.__qualname__}"]
    assert (lenients.served, lenients.judged, lenients.judged_wrong) == (1, 100, 0)
    assert (bounds["0.02"].served, bounds["0.02"].verified) == (0, 1)
