"""The frequency sketch (count-min, saturating, halving) and the window climber."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rgruntime.policies.climber import (
    BOOST,
    DECAY,
    HIGHEST,
    LEAP,
    LEAP_MAX,
    LEAP_NOISE,
    PRIOR,
    SHRINK,
    GhostClimber,
)
from rgruntime.policies.sketch import MAX_COUNT, FrequencySketch


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**12) | st.text(max_size=8), max_size=300), st.integers(1, 64))
def test_estimates_never_undercount(keys: list[object], entries: int) -> None:
    sketch = FrequencySketch(entries)
    counts = Counter(keys)
    for key in keys:
        sketch.add(sketch.slots(key), 1)
    for key, count in counts.items():
        assert sketch.estimate(sketch.slots(key)) >= min(count, MAX_COUNT)


def test_counts_are_exact_without_collisions_and_saturate() -> None:
    sketch = FrequencySketch(1_000)
    for key in range(100):
        sketch.add(sketch.slots(key), key % 20)
    exact = sum(
        sketch.estimate(sketch.slots(key)) == min(key % 20, MAX_COUNT) for key in range(100)
    )
    assert exact >= 98  # two rows of 4,096 counters: a shared pair is very unlikely


def test_halving_ages_every_count() -> None:
    sketch = FrequencySketch(100)
    slots = sketch.slots("key")
    sketch.add(slots, 9)
    sketch.halve()
    assert sketch.estimate(slots) == 4
    sketch.halve()
    sketch.halve()
    sketch.halve()
    assert sketch.estimate(slots) == 0


def test_rows_use_different_primes_within_the_width() -> None:
    sketch = FrequencySketch(300)
    assert sketch.width >= 1_200
    assert sketch.modulus_b < sketch.modulus_a <= sketch.width
    for modulus in (sketch.modulus_a, sketch.modulus_b):
        assert all(modulus % divisor for divisor in range(2, int(modulus**0.5) + 1))


def test_consecutive_integer_keys_spread_over_both_rows() -> None:
    # hash(n) == n: trace keys are consecutive integers, and must not pile up.
    sketch = FrequencySketch(1_000)
    rng = random.Random(1)
    keys = [rng.randrange(10**9) * 1_024 for _ in range(2_000)]  # structured: multiples of 1024
    rows = [{sketch.slots(key)[row] for key in keys} for row in (0, 1)]
    assert all(len(row) > 1_500 for row in rows)


def test_the_climber_follows_the_side_whose_ghosts_return() -> None:
    climber = GhostClimber(0.05, step=0.05)
    assert climber.climb(0, 0, depth=0) == 0.05  # no evidence: no move
    # Only the window's ghosts returned: grow it, by BOOST steps while the climb is new.
    grown = 0.05 + 0.05 * BOOST
    assert abs(climber.climb(10, 0, depth=0) - grown) < 1e-12
    # Mixed evidence: a proportional step, and a shrinking one at SHRINK x the speed.
    assert abs(climber.climb(5, 15, depth=0) - (grown - 0.025 * BOOST * SHRINK)) < 1e-12
    for _ in range(100):
        climber.climb(0, 1, depth=0)
    assert climber.share == 0.0  # clamped
    for _ in range(100):
        climber.climb(1, 0, depth=0)
    assert climber.share == HIGHEST  # never the whole cache: main's ghost must keep hearing
    assert GhostClimber(0.5, high=1.0).climb(1, 0, depth=0) > 0.5


def test_overwhelming_evidence_moves_the_climber_further() -> None:
    depth = 40.0
    plain, burst = GhostClimber(0.1, step=0.01), GhostClimber(0.1, step=0.01)
    plain.climb(int(LEAP * depth), 0, depth=depth)  # at the threshold: an ordinary move
    burst.climb(int(4 * LEAP * depth), 0, depth=depth)  # far beyond: 4 x LEAP times further
    ordinary = plain.share - 0.1
    assert ordinary <= 0.01 * BOOST
    assert (
        abs(
            (burst.share - 0.1)
            - ordinary * 4 * LEAP * (1 + PRIOR / LEAP) / (1 + PRIOR / (4 * LEAP))
        )
        < 1e-9
    )
    huge = GhostClimber(0.1, step=0.01)
    huge.climb(100 * int(depth), 0, depth=depth)
    assert huge.share < 0.1 + 0.01 * BOOST * LEAP_MAX + 1e-12  # at most LEAP_MAX times
    # Many depths apart but within LEAP_NOISE x its noise (a small cache's ghosts): no leap.
    small = GhostClimber(0.1, step=0.01)
    small.climb(22, 3, depth=2.0)
    difference, returns, depth = 19, 25, 2.0
    assert difference / depth > LEAP  # many depths apart...
    assert difference < LEAP_NOISE * returns**0.5  # ...but not beyond the noise
    assert abs((small.share - 0.1) - 0.01 * BOOST * 19 / (25 + PRIOR * 2.0)) < 1e-12


def test_the_climbers_steps_shrink_each_time_it_turns_round() -> None:
    climber = GhostClimber(0.5, step=0.01)
    moves = []
    for window_returns in (10, 10, 0, 0, 10, 0, 10, 0, 10, 0, 10):  # five turns after two
        before = climber.share
        climber.climb(window_returns, 10 - window_returns, depth=0)
        moves.append(abs(climber.share - before))
    boosted, turned = 0.01 * BOOST, 0.01 * max(1.0, BOOST * DECAY)
    assert abs(moves[0] - boosted) < 1e-12
    assert abs(moves[1] - boosted) < 1e-12
    # The move that turns is still full size (shrinking: at SHRINK x), the next ones smaller.
    assert abs(moves[2] - boosted * SHRINK) < 1e-12
    assert abs(moves[3] - turned * SHRINK) < 1e-12
    assert abs(moves[-1] - 0.01) < 1e-12  # down to one step, never below


def test_scarce_evidence_moves_the_climber_less_than_plentiful_evidence() -> None:
    deep = 100.0  # the ghosts were read this many departures deep
    scarce, plentiful = GhostClimber(0.5, step=0.05), GhostClimber(0.5, step=0.05)
    scarce.climb(3, 0, depth=deep)
    plentiful.climb(300, 0, depth=deep)
    assert 0.5 < scarce.share < 0.5 + 0.05 * BOOST * 3 / (3 + PRIOR * deep) + 1e-12
    assert plentiful.share > 0.5 + 0.9 * 0.05 * BOOST
