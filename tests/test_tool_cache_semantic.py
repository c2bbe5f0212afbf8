"""``@cache(strategy="semantic")``: a similar query is answered by the layer's semantic index.

Real clocks: embedding runs in worker threads, and an autojump clock would jump past the TTLs
while a thread works.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import rgruntime
from rgruntime import ConfigError
from rgruntime.errors import describe_value
from rgruntime.tools import Tool, ToolCacheSettings, cache

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


# -- the error bound and the judge of a tool ----------------------------------------------------


async def judge_results(query: str, cached_result: str, fresh_result: str) -> bool:
    return cached_result == fresh_result


def sync_judge(query: str, cached_result: str, fresh_result: str) -> bool:
    return True


async def two_argument_judge(cached_result: str, fresh_result: str) -> bool:
    return True


BOUND = "a share of wrong answers above 0 and at most 0.5"
JUDGE = '"answer" or an async function (query, cached_result, fresh_result) -> bool'


@pytest.mark.parametrize(
    ("options", "field", "accepted"),
    [
        ({"max_error_rate": 0}, "max_error_rate", BOUND),
        ({"max_error_rate": 0.6}, "max_error_rate", BOUND),
        ({"max_error_rate": -0.01}, "max_error_rate", BOUND),
        ({"max_error_rate": "0.02"}, "max_error_rate", BOUND),
        ({"max_error_rate": True}, "max_error_rate", BOUND),
        ({"judge": sync_judge}, "judge", JUDGE),
        ({"judge": two_argument_judge}, "judge", JUDGE),
        ({"judge": "Answer"}, "judge", JUDGE),
        ({"judge": None}, "judge", JUDGE),
        # An agent's model judges its answers; a tool has no model to ask.
        ({"judge": "model"}, "judge", "a tool has none"),
        (
            {"similarity_threshold": 0.9, "max_error_rate": 0.01},
            "max_error_rate",
            "either similarity_threshold (static) or max_error_rate, not both",
        ),
    ],
)
def test_a_bad_bound_or_judge_is_refused_at_decoration(
    options: dict[str, Any], field: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        cache(strategy="semantic", **options)
    assert raised.value.field == f"cache.{field}"
    assert raised.value.value is options[field]
    assert accepted in raised.value.accepted
    assert f"cache.{field}: {describe_value(options[field])} is not accepted" in str(raised.value)


def test_a_bound_and_a_judge_are_accepted() -> None:
    settings = ToolCacheSettings.checked(max_error_rate=0.05, judge=judge_results)
    assert (settings.max_error_rate, settings.judge) == (0.05, judge_results)
    assert ToolCacheSettings.checked(max_error_rate=1 / 2, judge="answer").max_error_rate == 0.5


def test_an_agents_override_names_its_field_and_replaces_the_tools_mode() -> None:
    where = "tool_cache_config.web_search"
    tools_own = ToolCacheSettings.checked(strategy="semantic", similarity_threshold=0.9)
    with pytest.raises(ConfigError) as raised:
        tools_own.merged(where, max_error_rate=0.7)
    assert (raised.value.field, raised.value.value) == (f"{where}.max_error_rate", 0.7)
    with pytest.raises(ConfigError) as raised:
        tools_own.merged(where, judge="model")
    assert (raised.value.field, raised.value.value) == (f"{where}.judge", "model")
    # The tool's @cache chose a threshold; the agent's bound replaces it (it could not unset it).
    bounded = tools_own.merged(where, max_error_rate=0.01, judge=judge_results)
    assert (bounded.similarity_threshold, bounded.max_error_rate) == (None, 0.01)
    assert bounded.judge is judge_results
    # And the other way round (the judge goes with the bound: the static mode judges nothing);
    # an override that chooses no mode keeps the tool's.
    static = bounded.merged(where, similarity_threshold=0.85)
    assert (static.similarity_threshold, static.max_error_rate, static.judge) == (
        0.85,
        None,
        "answer",
    )
    assert bounded.merged(where, ttl=60).max_error_rate == 0.01
    with pytest.raises(ConfigError) as raised:
        tools_own.merged(where, similarity_threshold=0.8, max_error_rate=0.01)
    assert raised.value.field == f"{where}.max_error_rate"
