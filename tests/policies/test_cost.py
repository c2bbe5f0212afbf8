"""Cost-aware eviction (GreedyDual-Size-Frequency)."""

from __future__ import annotations

import math

from rgruntime.policies import CostAwarePolicy, LRUPolicy, make_policy


def fill(policy: object, budget: int) -> dict[str, int]:
    """One expensive model answer, then ten cheap tool results, each read after it is written;
    evict (as the actor does) whenever the bytes go over ``budget``. Returns what stays."""
    held: dict[str, int] = {}

    def write(key: str, size: int, cost: float) -> None:
        held[key] = size
        policy.record_write(key, size, math.inf, cost)  # type: ignore[attr-defined]
        policy.record_access(key, math.inf)  # type: ignore[attr-defined]
        while sum(held.values()) > budget:
            victim = policy.victim()  # type: ignore[attr-defined]
            policy.remove(victim)  # type: ignore[attr-defined]
            del held[victim]

    write("model:answer", 4_000, cost=30.0)  # 30 s and a few cents to produce again
    for number in range(10):
        write(f"tool:result{number}", 1_000, cost=0.05)  # 50 ms to run again
    return held


def test_one_expensive_answer_outlives_ten_cheap_tool_results() -> None:
    kept = fill(CostAwarePolicy[str](max_size=8_000), budget=8_000)
    assert "model:answer" in kept
    assert "model:answer" not in fill(LRUPolicy[str](), budget=8_000)  # recency alone drops it


def test_value_is_per_byte_under_a_byte_budget() -> None:
    policy = CostAwarePolicy[str](max_size=10_000)
    policy.record_write("big", 5_000, math.inf, cost=10.0)  # 0.002 per byte
    policy.record_write("small", 100, math.inf, cost=1.0)  # 0.01 per byte
    policy.record_write("newest", 100, math.inf, cost=1.0)
    assert policy.victim() == "big"


def test_hits_raise_the_priority() -> None:
    policy = CostAwarePolicy[str]()
    for key in ("a", "b", "c"):
        policy.record_write(key, 1, math.inf)
    policy.record_access("a", math.inf, count=3)
    assert policy.victim() == "b"
    policy.record_access("b", math.inf, count=5)
    assert policy.victim() == "a"


def test_the_clock_rises_on_evictions_only() -> None:
    policy = CostAwarePolicy[str]()
    policy.record_write("a", 1, math.inf, cost=2.0)
    policy.record_write("b", 1, math.inf, cost=5.0)
    policy.record_write("c", 1, math.inf, cost=9.0)
    policy.remove("a")  # a deletion: the clock stays
    assert policy.clock == 0.0
    assert policy.victim() == "b"
    policy.remove("b")  # the eviction of the named victim
    assert policy.clock == 5.0
    policy.record_write("d", 1, math.inf, cost=1.0)
    assert policy.priority("d") == 6.0  # newcomers start from the clock


def test_the_newest_entry_is_spared_while_another_is_there() -> None:
    policy = CostAwarePolicy[str]()
    policy.record_write("old", 1, math.inf, cost=9.0)
    policy.record_write("new", 1, math.inf, cost=1.0)
    assert policy.victim() == "old"
    policy.remove("old")
    assert policy.victim() == "new"


def test_a_zero_or_negative_cost_is_clamped() -> None:
    policy = make_policy("cost")
    policy.record_write("free", 1, math.inf, cost=0.0)
    policy.record_write("negative", 1, math.inf, cost=-3.0)
    policy.record_write("newest", 1, math.inf)
    assert policy.victim() == "free"
