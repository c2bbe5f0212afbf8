"""Every strategy under the layer actor's eviction loop: bounds never exceeded, the loop ends.

``FakeLayer`` does what ``LayerActor._evict`` does with a policy: entries count their own hits,
and a victim hit since the policy last heard of it is reported (``record_access`` with the
number of unreported hits) and the policy asked again (a second chance); otherwise it is removed.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgruntime.policies import POLICIES, make_policy

STRATEGIES = sorted(POLICIES)


class FakeLayer:
    def __init__(self, strategy: str, max_size: int | None, max_entries: int | None) -> None:
        self.policy: Any = make_policy(strategy, max_size=max_size, max_entries=max_entries)
        self.max_size = max_size
        self.max_entries = max_entries
        self.entries: dict[str, list[int]] = {}  # key -> [size, hits, hits reported]
        self.second_chances = 0

    @property
    def size(self) -> int:
        return sum(entry[0] for entry in self.entries.values())

    def over(self) -> bool:
        return (self.max_entries is not None and len(self.entries) > self.max_entries) or (
            self.max_size is not None and self.size > self.max_size
        )

    def write(self, key: str, size: int, cost: float = 1.0) -> None:
        if self.max_size is not None and size > self.max_size:
            return  # the layer refuses an entry that could never fit
        old = self.entries.get(key)
        self.entries[key] = [size, 0, 0] if old is None else [size, old[1], old[2]]
        self.policy.record_write(key, size, math.inf, cost)

    def hit(self, key: str) -> None:
        if key in self.entries:
            self.entries[key][1] += 1

    def delete(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.policy.remove(key)

    def maintain(self) -> None:
        chances = 0
        while self.over():
            key = self.policy.victim()
            entry = self.entries[key]  # the policy only names keys the layer holds
            if entry[1] != entry[2]:
                self.policy.record_access(key, math.inf, entry[1] - entry[2])
                entry[2] = entry[1]
                chances += 1
                assert chances <= len(self.entries), "a key got a second second chance"
                continue
            del self.entries[key]
            self.policy.remove(key)
        self.second_chances += chances
        assert len(self.policy) == len(self.entries)


OPERATION = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 30), st.integers(1, 60)),
    st.tuples(st.just("hit"), st.integers(0, 30), st.integers(1, 4)),
    st.tuples(st.just("delete"), st.integers(0, 30), st.just(0)),
)


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=60, deadline=None)
@given(
    st.lists(OPERATION, max_size=150),
    st.integers(1, 200),
    st.one_of(st.none(), st.integers(1, 12)),
)
def test_bounds_hold_after_every_pass(
    strategy: str, operations: list[tuple[str, int, int]], max_size: int, max_entries: int | None
) -> None:
    layer = FakeLayer(strategy, max_size, max_entries)
    for kind, number, amount in operations:
        key = f"k{number}"
        if kind == "write":
            layer.write(key, amount)
            layer.maintain()
        elif kind == "hit":
            for _ in range(amount):
                layer.hit(key)
        else:
            layer.delete(key)
        assert layer.size <= max_size
        assert max_entries is None or len(layer.entries) <= max_entries


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_policy_without_bounds_learns_the_capacity(strategy: str) -> None:
    # The actor as it is today builds policies without the bounds: they must still work.
    layer = FakeLayer(strategy, None, None)
    layer.policy = make_policy(strategy)
    layer.max_entries = 20
    for round_ in range(5):
        for number in range(40):
            layer.write(f"k{number % (25 + round_)}", 1)
            layer.hit(f"k{number % 7}")
            layer.maintain()
    assert len(layer.entries) == 20
