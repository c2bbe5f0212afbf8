"""``@cache(strategy="semantic")``: a similar query is answered by the layer's semantic index.

Real clocks: embedding runs in worker threads, and an autojump clock would jump past the TTLs
while a thread works.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

import rgruntime
from rgruntime.tools import Tool, cache

pytestmark = pytest.mark.anyio


async def test_the_semantic_strategy_answers_a_similar_query() -> None:
    pytest.importorskip("numpy")
    calls: ClassVar[list[str]] = []

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


class Search(Tool):
    """A search tool per language: ``cache_scope()`` tells the instances apart."""

    calls: ClassVar[list[str]] = []

    def __init__(self, language: str) -> None:
        self.language = language

    def cache_scope(self) -> str:
        return self.language

    @cache(strategy="semantic", embedder="hashing", similarity_threshold=0.5)
    async def search(self, query: str) -> str:
        self.calls.append(f"{self.language}:{query}")
        return f"{self.language} v{self.version}: {query}"


class SearchV2(Search):
    """The same tool (same name, same method), version 2: its results mean something else."""

    name = "search"
    version = 2


async def test_the_semantic_strategy_never_crosses_instances_or_versions() -> None:
    pytest.importorskip("numpy")
    Search.calls = []
    async with rgruntime.open_runtime():
        english = await Search("en").search("weather in paris today")
        assert await Search("en").search("paris weather today") == english  # similar: a hit
        french = await Search("fr").search("paris weather today")
        newer = await SearchV2("en").search("paris weather today")
    assert english == "en v1: weather in paris today"
    assert french == "fr v1: paris weather today"
    assert newer == "en v2: paris weather today"
    assert Search.calls == [
        "en:weather in paris today",
        "fr:paris weather today",
        "en:paris weather today",
    ]
