"""make_policy: strategies, bounds and options; bad names raise ConfigError."""

from __future__ import annotations

import pytest

from rgruntime.errors import ConfigError
from rgruntime.policies import (
    POLICIES,
    CostAwarePolicy,
    LFUPolicy,
    LRUPolicy,
    TieredPolicy,
    TTLPolicy,
    make_policy,
)


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [
        ("lru", LRUPolicy),
        ("lfu", LFUPolicy),
        ("ttl", TTLPolicy),
        ("tiered", TieredPolicy),
        ("cost", CostAwarePolicy),
    ],
)
def test_each_strategy_builds_its_policy(strategy: str, kind: type) -> None:
    assert isinstance(make_policy(strategy), kind)
    assert isinstance(make_policy(strategy, max_size=1_000, max_entries=10), kind)
    assert set(POLICIES) == {"lru", "lfu", "ttl", "tiered", "cost"}


def test_bounds_size_the_segments() -> None:
    by_entries = make_policy("lfu", max_entries=1_000)
    assert isinstance(by_entries, LFUPolicy)
    assert by_entries.capacity == 1_000
    by_bytes = make_policy("lfu", max_size=5_000_000, max_entries=1_000)
    assert isinstance(by_bytes, LFUPolicy)
    assert by_bytes.capacity == 5_000_000  # bytes win: entries weigh their size


def test_options_reach_the_policy() -> None:
    policy = make_policy(
        "tiered",
        tiers=[{"name": "hot", "size": "1MB", "ttl": 60}, {"name": "cold", "size": "9MB"}],
        max_size=10_000_000,
        window=0.1,
        adaptive=False,
    )
    assert isinstance(policy, TieredPolicy)
    assert [tier.name for tier in policy.tiers] == ["hot", "cold"]
    assert policy.window_share == 0.1


def test_an_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        make_policy("arc")
    assert raised.value.field == "strategy"
    assert raised.value.value == "arc"
    assert "'lru', 'lfu', 'ttl', 'tiered', 'cost'" in raised.value.accepted


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        make_policy("lfu", tiers=[])
    assert raised.value.field == "lfu.tiers"
    assert "window, adaptive" in raised.value.accepted
    with pytest.raises(ConfigError, match="no option"):
        make_policy("lru", window=0.5)
