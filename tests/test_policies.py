"""The eviction policies, pure and synchronous, against brute-force references.

A policy is driven with random small workloads of writes, accesses and removals; after every step
its victim (or KeyError when empty) and its size must equal the reference's.
"""

from __future__ import annotations

import math
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgruntime import LRUPolicy, TTLPolicy
from rgruntime.policies import POLICIES, make_policy
from tests.policies.reference import ReferenceLRU, ReferenceTTL

KEYS = st.sampled_from("abcdef")
DEADLINES = st.sampled_from([1.0, 2.0, 3.0, 5.0, math.inf])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), KEYS, DEADLINES),
        st.tuples(st.just("access"), KEYS, DEADLINES),
        st.tuples(st.just("remove"), KEYS, st.just(0.0)),
    ),
    max_size=60,
)


class Reference(Protocol):
    def record_access(self, key: str, expires_at: float) -> None: ...
    def record_write(self, key: str, size: int, expires_at: float) -> None: ...
    def remove(self, key: str) -> None: ...
    def victim(self) -> str: ...
    def __len__(self) -> int: ...


def victim_or_none(policy: Reference) -> str | None:
    try:
        return policy.victim()
    except KeyError:
        return None


def replay(
    policy: Reference, reference: Reference, operations: list[tuple[str, str, float]]
) -> None:
    for operation, key, deadline in operations:
        for target in (policy, reference):
            if operation == "write":
                target.record_write(key, 1, deadline)
            elif operation == "access":
                target.record_access(key, deadline)
            else:
                target.remove(key)
        assert len(policy) == len(reference)
        assert victim_or_none(policy) == victim_or_none(reference)


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_lru_matches_the_reference(operations: list[tuple[str, str, float]]) -> None:
    replay(LRUPolicy[str](), ReferenceLRU(), operations)


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_ttl_matches_the_reference(operations: list[tuple[str, str, float]]) -> None:
    replay(TTLPolicy[str](), ReferenceTTL(), operations)


@pytest.mark.parametrize("strategy", sorted(POLICIES))
def test_victim_peeks_and_remove_stops_tracking(strategy: str) -> None:
    policy = make_policy(strategy)
    policy.record_write("old", 1, 1.0)
    policy.record_write("new", 1, 2.0)
    # victim() only names the key: asking twice gives the same answer.
    assert policy.victim() == "old"
    assert policy.victim() == "old"
    assert len(policy) == 2
    policy.remove("old")
    assert policy.victim() == "new"
    policy.remove("old")  # removing an untracked key is harmless
    policy.remove("new")
    assert len(policy) == 0
    with pytest.raises(KeyError):
        policy.victim()


@pytest.mark.parametrize("strategy", sorted(POLICIES))
def test_access_to_an_unknown_key_is_ignored(strategy: str) -> None:
    # An access record may arrive after its entry left: it must not start tracking the key.
    policy = make_policy(strategy)
    policy.record_access("ghost", 1.0)
    assert len(policy) == 0
    policy.record_write("real", 1, 5.0)
    policy.record_access("ghost", 1.0)
    assert len(policy) == 1
    assert policy.victim() == "real"


def test_lru_access_moves_a_key_to_the_back() -> None:
    policy = LRUPolicy[str]()
    for key in "abc":
        policy.record_write(key, 1, math.inf)
    policy.record_access("a", math.inf)
    assert policy.victim() == "b"


def test_ttl_evicts_the_nearest_deadline_and_untimed_entries_last_in_write_order() -> None:
    policy = TTLPolicy[str]()
    policy.record_write("never-1", 1, math.inf)
    policy.record_write("late", 1, 50.0)
    policy.record_write("never-2", 1, math.inf)
    policy.record_write("soon", 1, 10.0)
    order = []
    while len(policy):
        order.append(policy.victim())
        policy.remove(order[-1])
    assert order == ["soon", "late", "never-1", "never-2"]


def test_make_policy_knows_the_configured_strategies() -> None:
    assert isinstance(make_policy("lru"), LRUPolicy)
    assert isinstance(make_policy("ttl"), TTLPolicy)
