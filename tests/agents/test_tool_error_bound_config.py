"""An agent's ``tool_cache_config`` sets a tool's error bound and judge (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from rgruntime import ConfigError, ResonantGenesis
from rgruntime.agents.config import parse_tool_cache_config
from rgruntime.agents.runner import tool_plan
from rgruntime.tools import cache

pytestmark = pytest.mark.anyio


async def judge_results(query: str, cached_result: str, fresh_result: str) -> bool:
    return cached_result == fresh_result


@cache(strategy="semantic", similarity_threshold=0.9)
async def web_search(query: str) -> list[str]:
    """Search the web."""
    return [f"{query} docs"]


def test_the_bound_and_the_judge_reach_the_tools_plan() -> None:
    options = {
        "web_search": {"strategy": "semantic", "max_error_rate": 0.01, "judge": judge_results}
    }
    overrides = parse_tool_cache_config(options, ["web_search"])
    settings = tool_plan(web_search, overrides["web_search"], "web_search").settings
    # The agent's bound replaces the threshold the tool's @cache chose.
    assert (settings.similarity_threshold, settings.max_error_rate) == (None, 0.01)
    assert settings.judge is judge_results


@pytest.mark.parametrize(
    ("setting", "value", "accepted"),
    [
        ("max_error_rate", 0, "above 0 and at most 0.5"),
        ("max_error_rate", 0.6, "above 0 and at most 0.5"),
        ("max_error_rate", "0.02", "above 0 and at most 0.5"),
        ("judge", "model", "a tool has none"),
        ("judge", lambda query, cached, fresh: True, "async function"),
    ],
)
async def test_a_bad_bound_or_judge_is_refused_at_the_agents_creation(
    setting: str, value: Any, accepted: str
) -> None:
    async with ResonantGenesis() as client:
        client.tools.register(web_search)
        with pytest.raises(ConfigError) as raised:
            await client.agents.create(
                name="Research Agent",
                tools=["web_search"],
                tool_cache_config={"web_search": {"strategy": "semantic", setting: value}},
            )
        assert (raised.value.field, raised.value.value) == (
            f"tool_cache_config.web_search.{setting}",
            value,
        )
        assert accepted in raised.value.accepted
        assert client.agents.list() == []


def test_a_judge_with_a_threshold_is_refused_for_a_tool_as_for_an_agent() -> None:
    with pytest.raises(ConfigError) as raised:
        cache(strategy="semantic", similarity_threshold=0.9, judge=judge_results)
    assert (raised.value.field, raised.value.value) == ("cache.judge", judge_results)
    assert "static mode" in raised.value.accepted
