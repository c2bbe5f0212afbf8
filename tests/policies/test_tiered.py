"""Tiered: promotion by hits, demotion by overflow, each tier's TTL, and the validation."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

import pytest

from rgruntime.errors import ConfigError
from rgruntime.policies import DEFAULT_TIERS, Tier, TieredPolicy, make_policy, parse_tiers

GUIDE = [
    {"name": "hot", "size": "10MB", "ttl": 300},
    {"name": "warm", "size": "50MB", "ttl": 3600},
    {"name": "cold", "size": "200MB", "ttl": 86400},
]


def small_tiers(track_moves: bool = False) -> TieredPolicy[str]:
    # 100 entries: window 1, then hot 10, warm 20, cold the rest (69), as sized in proportion.
    tiers = [
        {"name": "hot", "size": 10},
        {"name": "warm", "size": 20},
        {"name": "cold", "size": 69},
    ]
    return TieredPolicy(
        tiers, max_entries=100, track_moves=track_moves, window=0.01, adaptive=False
    )


def serve(policy: TieredPolicy[str], keys: Iterable[str], capacity: int) -> None:
    """Drive ``policy`` as a layer of ``capacity`` entries that reports every hit would."""
    for key in keys:
        if key in policy:
            policy.record_access(key, math.inf)
        else:
            policy.record_write(key, 1, math.inf)
        while len(policy) > capacity:
            policy.remove(policy.victim())


def tier_name(policy: TieredPolicy[str], key: str) -> str | None:
    tier = policy.tier_of(key)
    return None if tier is None else tier.name


def test_guide_tiers_parse_hottest_first() -> None:
    tiers = parse_tiers(GUIDE)
    assert tiers == (
        Tier("hot", 10_000_000, 300.0),
        Tier("warm", 50_000_000, 3600.0),
        Tier("cold", 200_000_000, 86400.0),
    )
    policy = TieredPolicy[str](GUIDE)
    assert policy.capacity == 260_000_000  # no layer budget: the tiers' sum, in bytes
    assert policy.tiers == tiers


def test_new_entries_enter_the_coldest_tier_and_hits_promote_one_tier_at_a_time() -> None:
    policy = small_tiers()
    policy.record_write("a", 1, math.inf)
    policy.record_write("b", 1, math.inf)  # the window holds one: "a" moves on into cold
    assert tier_name(policy, "a") == "cold"
    assert tier_name(policy, "b") == "cold"  # the window is part of the coldest tier
    policy.record_access("a", math.inf)
    assert tier_name(policy, "a") == "warm"
    policy.record_access("a", math.inf)
    assert tier_name(policy, "a") == "hot"
    policy.record_access("a", math.inf)
    assert tier_name(policy, "a") == "hot"  # the hottest tier only refreshes


def test_a_full_tier_demotes_its_least_recently_used_entry() -> None:
    policy = small_tiers()
    keys = [f"k{number}" for number in range(12)]
    for key in [*keys, "last"]:
        policy.record_write(key, 1, math.inf)
    for key in keys:  # two hits each: all twelve climb to hot, which holds ten
        policy.record_access(key, math.inf)
        policy.record_access(key, math.inf)
    assert [tier_name(policy, key) for key in keys] == ["warm"] * 2 + ["hot"] * 10
    assert policy.tier_weights() == {"hot": 10, "warm": 2, "cold": 1}
    # Overfill warm too: its oldest entries go down to cold.
    more = [f"m{number}" for number in range(25)]
    for key in [*more, "last2"]:
        policy.record_write(key, 1, math.inf)
    for key in more:
        policy.record_access(key, math.inf)
    assert policy.tier_weights()["warm"] == 20
    assert tier_name(policy, "k0") == "cold"


def test_each_tier_caps_the_deadline_of_its_entries_through_take_moves() -> None:
    policy = TieredPolicy[str](GUIDE, max_entries=100, track_moves=True, window=0.01)
    policy.record_write("a", 1, math.inf)
    policy.record_write("b", 1, math.inf)
    tier = policy.tier_of("a")
    assert tier is not None
    assert tier.ttl == 86400  # a new entry is capped by the coldest tier's TTL
    assert policy.take_moves() == []  # entering the cold tier is not a move
    policy.record_access("a", math.inf)
    policy.record_access("a", math.inf)
    moves = policy.take_moves()
    assert [(key, moved.name, moved.ttl) for key, moved in moves] == [("a", "hot", 300.0)]
    assert policy.take_moves() == []  # each move is reported once
    policy.record_access("b", math.inf)
    policy.remove("b")
    assert policy.take_moves() == []  # keys that left are not reported


def test_moves_are_not_tracked_unless_asked() -> None:
    policy = small_tiers()
    policy.record_write("a", 1, math.inf)
    policy.record_write("b", 1, math.inf)
    policy.record_access("a", math.inf)
    assert policy.take_moves() == []


@pytest.mark.parametrize("count", [1, 2, 5])
def test_any_number_of_tiers(count: int) -> None:
    tiers = [{"name": f"t{index}", "size": 10} for index in range(count)]
    policy = TieredPolicy[str](tiers, max_entries=50, window=0.02, adaptive=False)
    serve(policy, (f"k{number % 70}" for number in range(200)), 50)
    assert len(policy) == 50
    assert sum(policy.tier_weights().values()) == 50
    assert set(policy.tier_weights()) == {f"t{index}" for index in range(count)}


def test_default_tiers_are_the_guides_split_without_ttls() -> None:
    policy = make_policy("tiered", max_entries=260)
    assert isinstance(policy, TieredPolicy)
    assert policy.tiers == DEFAULT_TIERS
    assert [tier.size for tier in DEFAULT_TIERS] == [10_000_000, 50_000_000, 200_000_000]
    assert all(tier.ttl is None for tier in DEFAULT_TIERS)


@pytest.mark.parametrize(
    ("tiers", "field", "accepted"),
    [
        ([], "tiers", "non-empty list"),
        ("hot", "tiers", "non-empty list"),
        ({"name": "hot", "size": 1}, "tiers", "non-empty list"),
        (["hot"], "tiers[0]", "a dict"),
        ([{"size": "10MB"}], "tiers[0].name", "every tier needs one"),
        ([{"name": "hot"}], "tiers[0].size", "every tier needs one"),
        ([{"name": "", "size": 1}], "tiers[0].name", "non-empty string"),
        ([{"name": 3, "size": 1}], "tiers[0].name", "non-empty string"),
        ([{"name": "hot", "size": "10XB"}], "tiers[0].size", "'100MB'"),
        ([{"name": "hot", "size": 0}], "tiers[0].size", "positive number of bytes"),
        ([{"name": "hot", "size": 1, "ttl": -5}], "tiers[0].ttl", "positive number of seconds"),
        ([{"name": "hot", "size": 1, "ttl": "soon"}], "tiers[0].ttl", "'5m'"),
        ([{"name": "hot", "size": 1, "colour": "red"}], "tiers[0].colour", "name, size, ttl"),
        (
            [{"name": "hot", "size": 1}, {"name": "hot", "size": 2}],
            "tiers[1].name",
            "tiers[0] is already 'hot'",
        ),
        ([Tier("hot", -1)], "tiers[0].size", "positive number of bytes"),
    ],
)
def test_bad_tiers_name_the_field_the_value_and_what_is_accepted(
    tiers: Any, field: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        TieredPolicy[str](tiers)
    assert raised.value.field == field
    assert accepted in raised.value.accepted
    with pytest.raises(ConfigError):
        make_policy("tiered", tiers=tiers)


def test_the_field_prefix_is_the_callers() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_tiers([{"name": "hot", "size": "big"}], field="cache_config.layers.model.tiers")
    assert raised.value.field == "cache_config.layers.model.tiers[0].size"
    assert raised.value.value == "big"


def test_keys_read_far_more_than_others_end_in_the_hot_tier() -> None:
    # A live layer that reports every hit: 10 favourites read on every round, 4,000 other keys
    # read at random; 600 entries under the guide's 10 : 50 : 200 split (hot holds about 20).
    rng = random.Random(7)
    policy = TieredPolicy[str](max_entries=600)
    favourites = [f"fav{number}" for number in range(10)]
    for _ in range(3_000):
        serve(policy, [*favourites, *(f"k{rng.randrange(4_000)}" for _ in range(5))], 600)
    assert [tier_name(policy, key) for key in favourites] == ["hot"] * 10


def test_a_late_report_of_several_hits_promotes_once_per_hit() -> None:
    policy = small_tiers(track_moves=True)
    policy.record_write("a", 1, math.inf)
    policy.record_write("b", 1, math.inf)  # "a" moves on into cold
    policy.record_access("a", math.inf, count=5)  # a lazily reported batch: cold -> warm -> hot
    assert tier_name(policy, "a") == "hot"
    assert [(key, tier.name) for key, tier in policy.take_moves()] == [("a", "hot")]
    policy.record_write("c", 1, math.inf)  # "b" moves on into cold
    policy.record_access("b", math.inf, count=1)
    assert tier_name(policy, "b") == "warm"  # one hit, one tier
