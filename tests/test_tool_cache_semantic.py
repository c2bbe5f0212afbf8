"""``@cache(strategy="semantic")``: a similar query is answered by the layer's semantic index.

Real clocks: embedding runs in worker threads, and an autojump clock would jump past the TTLs
while a thread works.
"""

from __future__ import annotations

import pytest

import rgruntime
from rgruntime.tools import cache

pytestmark = pytest.mark.anyio


async def test_the_semantic_strategy_answers_a_similar_query() -> None:
    pytest.importorskip("numpy")
    calls: list[str] = []

    @cache(strategy="semantic", embedder="hashing", similarity_threshold=0.5)
    async def web_search(query: str, limit: int = 3) -> list[str]:
        calls.append(query)
        return [f"result for {query}"]

    async with rgruntime.open_runtime():
        first = await web_search("weather in paris today")
        again = await web_search("weather in paris today")
        similar = await web_search("paris weather today")
        other_limit = await web_search("paris weather today", limit=10)  # another partition
    assert first == again == similar
    assert other_limit == ["result for paris weather today"]
    assert calls == ["weather in paris today", "paris weather today"]
