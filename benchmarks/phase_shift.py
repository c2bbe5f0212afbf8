"""Synthetic workloads whose popular set changes abruptly, for the eviction benchmark.

A frequency filter (TinyLFU) learns who is popular; when the popular set changes at once, the
filter must forget the old favourites fast enough to let the new ones in. The shared traces have
no such shift, so these workloads are generated: deterministic (a fixed seed each), unit-size
keys, each with the cache size it is replayed at.

Each family exists twice: a *tuning* instance, measured while the policies were tuned, and a
*held-out* instance (other seed, other sizes and skew) that was not looked at during tuning and is
reported apart.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

__all__ = ["WORKLOADS", "Workload"]


@dataclass(frozen=True)
class Workload:
    """A generated trace and the cache size (entries) it is replayed at."""

    name: str
    capacity: int
    held_out: bool
    make: Callable[[], list[int]]
    summary: str


def _zipf_sampler(rng: random.Random, keys: int, skew: float) -> Callable[[int], list[int]]:
    """``draw(n)``: n ranks in ``range(keys)``, rank r drawn with weight 1 / (r + 1) ** skew."""
    cumulative = list(accumulate(1.0 / (rank + 1) ** skew for rank in range(keys)))
    population = range(keys)

    def draw(count: int) -> list[int]:
        return rng.choices(population, cum_weights=cumulative, k=count)

    return draw


def _zipf_phase(rng: random.Random, ids: list[int], skew: float, requests: int) -> list[int]:
    """``requests`` Zipf-distributed requests over ``ids`` (``ids[0]`` the most popular)."""
    return [ids[rank] for rank in _zipf_sampler(rng, len(ids), skew)(requests)]


def _fresh(start: int, count: int) -> list[int]:
    """``count`` keys never used before (key spaces of the phases are disjoint ranges)."""
    return list(range(start, start + count))


def _new_favourites(
    rng: random.Random, next_key: int, capacity: int, skew: float, requests: list[int]
) -> int:
    """Append a Zipf phase over 50 x ``capacity`` keys never used before, in a random order of
    popularity, to ``requests``; return the next unused key."""
    universe = _fresh(next_key, 50 * capacity)
    rng.shuffle(universe)
    requests += _zipf_phase(rng, universe, skew, 300 * capacity)
    return next_key + len(universe)


#: A phase after the Zipf one: appends its requests, given the next unused key; returns the next.
Phase = Callable[[random.Random, int, list[int]], int]


def _alternating(
    seed: int, capacity: int, skew: float, rounds: int, second: Phase
) -> Callable[[], list[int]]:
    """``rounds`` times: a Zipf phase over new keys, then ``second``."""

    def make() -> list[int]:
        rng = random.Random(seed)
        requests: list[int] = []
        next_key = 0
        for _ in range(rounds):
            next_key = _new_favourites(rng, next_key, capacity, skew, requests)
            next_key = second(rng, next_key, requests)
        return requests

    return make


def frequency_then_new_set(
    seed: int, capacity: int, skew: float, rounds: int = 2
) -> Callable[[], list[int]]:
    """A Zipf phase over a large key space, then a new working set of 80% of the cache, requested
    uniformly, then another Zipf phase with new favourites, and so on (``rounds`` times)."""

    def new_set(rng: random.Random, next_key: int, requests: list[int]) -> int:
        working_set = _fresh(next_key, capacity * 4 // 5)
        requests += rng.choices(working_set, k=200 * capacity)
        return next_key + len(working_set)

    return _alternating(seed, capacity, skew, rounds, new_set)


def favourites_move(
    seed: int, capacity: int, skew: float, phases: int = 4
) -> Callable[[], list[int]]:
    """One Zipf key space whose popularity ranks are reshuffled at once every phase: yesterday's
    favourites become rare and rare keys become favourites."""

    def make() -> list[int]:
        rng = random.Random(seed)
        universe = list(range(50 * capacity))
        requests: list[int] = []
        for _ in range(phases):
            rng.shuffle(universe)
            requests += _zipf_phase(rng, universe, skew, 250 * capacity)
        return requests

    return make


def frequency_then_recency(
    seed: int, capacity: int, skew: float, rounds: int = 2
) -> Callable[[], list[int]]:
    """A Zipf phase, then a recency phase: a stream of new keys, each re-requested a few times
    soon after (a reuse distance under half the cache), which only recency catches."""

    def recency(rng: random.Random, next_key: int, requests: list[int]) -> int:
        recent: list[int] = []
        reach = capacity // 2
        for _ in range(300 * capacity):
            if recent and rng.random() < 0.6:
                requests.append(recent[-1 - int(rng.random() ** 2 * min(reach, len(recent)))])
            else:
                recent.append(next_key)
                requests.append(next_key)
                next_key += 1
                if len(recent) > 2 * reach:
                    del recent[:reach]
        return next_key

    return _alternating(seed, capacity, skew, rounds, recency)


#: Tuning instances first, then the held-out ones (other seeds, sizes and skews).
WORKLOADS: Final = (
    Workload("freq→new set", 1_000, False, frequency_then_new_set(1, 1_000, 0.9),
             "Zipf 0.9 over 50k keys, then 800 new keys uniformly; twice"),
    Workload("favourites move", 1_000, False, favourites_move(2, 1_000, 1.0),
             "Zipf 1.0 over 50k keys, ranks reshuffled 4 times"),
    Workload("freq→recency", 1_000, False, frequency_then_recency(3, 1_000, 0.9),
             "Zipf 0.9, then new keys re-read soon after; twice"),
    Workload("freq→new set (held out)", 2_000, True, frequency_then_new_set(21, 2_000, 0.8),
             "Zipf 0.8 over 100k keys, then 1,600 new keys uniformly; twice"),
    Workload("favourites move (held out)", 2_000, True, favourites_move(22, 2_000, 0.8),
             "Zipf 0.8 over 100k keys, ranks reshuffled 4 times"),
    Workload("freq→recency (held out)", 2_000, True, frequency_then_recency(23, 2_000, 1.1),
             "Zipf 1.1, then new keys re-read soon after; twice"),
)  # fmt: skip
