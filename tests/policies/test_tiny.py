"""Tiny budgets: a cache of 1 to 20 entries must still hit (libCacheSim's S3-FIFO does not)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from rgruntime.policies import POLICIES, make_policy


def zipf_requests(keys: int, requests: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(keys)]
    return rng.choices(range(keys), weights, k=requests)


def hits(policy: Any, requests: list[int], capacity: int) -> int:
    resident: set[int] = set()
    count = 0
    for key in requests:
        if key in resident:
            count += 1
            policy.record_access(key, math.inf)
            continue
        policy.record_write(key, 1, math.inf)
        resident.add(key)
        while len(resident) > capacity:
            evicted = policy.victim()
            policy.remove(evicted)
            resident.discard(evicted)
    return count


@pytest.mark.parametrize("strategy", sorted(POLICIES))
@pytest.mark.parametrize("capacity", [1, 2, 3, 5, 10, 20])
def test_tiny_caches_hit(strategy: str, capacity: int) -> None:
    requests = zipf_requests(keys=200, requests=4000)
    mine = hits(make_policy(strategy, max_entries=capacity), requests, capacity)
    lru = hits(make_policy("lru", max_entries=capacity), requests, capacity)
    assert mine > 0
    # A Zipf workload: the most popular keys are worth keeping even in one slot.
    assert mine >= 0.8 * lru, (mine, lru)


@pytest.mark.parametrize("strategy", sorted(POLICIES))
def test_a_one_entry_cache_serves_an_immediate_repeat(strategy: str) -> None:
    requests = [1, 1, 2, 2, 3, 3, 1, 1]
    assert hits(make_policy(strategy, max_entries=1), requests, 1) == 4


@pytest.mark.parametrize("strategy", ["lfu", "tiered"])
def test_a_small_cache_keeps_hot_keys_through_a_scan(strategy: str) -> None:
    # Eight hot keys interleaved with a scan of keys seen once: between two uses of a hot key
    # come 15 other keys, more than the 12 entries, so LRU keeps none of them.
    requests = [key for step in range(2000) for key in (1000 + step, step % 8)]
    capacity = 12
    mine = hits(make_policy(strategy, max_entries=capacity), requests, capacity)
    lru = hits(make_policy("lru", max_entries=capacity), requests, capacity)
    assert lru == 0
    assert mine >= 1900  # of the 2000 hot requests
