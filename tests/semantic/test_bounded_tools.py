"""Tool results cached with ``strategy="semantic"`` and no threshold: the error-bound mode.

Real clocks and the real local model (embedding runs in worker threads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

import rgruntime
from rgruntime.semantic import semantic_index, semantic_stats
from rgruntime.tools import cache

pytestmark = pytest.mark.anyio

RESET = "How do I reset my password?"
RESET_AGAIN = "How can I reset my password?"  # 0.99 on all-MiniLM-L6-v2
FAR = "Resetting my password: how does it work?"  # 0.81


def docs_tool(calls: list[str]) -> Callable[[str], Awaitable[str]]:
    """A tool cached by meaning under the default error bound, recording what it ran."""

    @cache(strategy="semantic")
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
        stats = semantic_stats(runtime)["tool:minilm"].error_bound["0.02"]
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
