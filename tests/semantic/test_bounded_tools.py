"""Tool results cached with ``strategy="semantic"`` and no threshold: the error-bound mode.

Real clocks and the real local model (embedding runs in worker threads).
"""

from __future__ import annotations

import pytest

import rgruntime
from rgruntime.semantic import semantic_stats
from rgruntime.tools import cache

pytestmark = pytest.mark.anyio


async def test_a_close_paraphrase_is_served_and_a_far_one_is_run_and_judged() -> None:
    calls: list[str] = []

    @cache(strategy="semantic")
    async def lookup_docs(query: str) -> str:
        calls.append(query)
        return f"docs for {query}"

    async with rgruntime.open_runtime() as runtime:
        first = await lookup_docs("How do I reset my password?")
        # Cold at 2%: served from the static default's range up.
        assert await lookup_docs("How can I reset my password?") == first
        # 0.81: below that range, above the floor: verified (run), and its judgement learned.
        fresh = await lookup_docs("Resetting my password: how does it work?")
        stats = semantic_stats(runtime)["tool:minilm"].error_bound["0.02"]
    assert calls == ["How do I reset my password?", "Resetting my password: how does it work?"]
    assert fresh == "docs for Resetting my password: how does it work?"
    assert stats.served == 1
    assert stats.verified == 1
    assert stats.judged == stats.verified
    # The two results differ: a verified candidate is judged wrong.
    assert stats.judged_wrong == stats.judged
