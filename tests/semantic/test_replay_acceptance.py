"""The replay's acceptance rows read the issue's wording exactly (benchmarks/semantic_replay.py)."""

from __future__ import annotations

from benchmarks.semantic_replay import (
    BOUNDS,
    SEEDS,
    STATIC_THRESHOLDS,
    Query,
    Stream,
    markdown,
    rows,
)


def stream(similarity: float, correct: bool, count: int) -> Stream:
    """``count`` asks of one entry each, every candidate at ``similarity``, all right or wrong."""
    queries = []
    for number in range(count):
        query = Query(number, f"p{number}", f"k{number}", similarity, correct)
        query.static = {
            threshold: (correct if similarity >= threshold else None)
            for threshold in STATIC_THRESHOLDS
        }
        queries.append(query)
    return Stream("synthetic", queries)


def test_serving_nothing_where_every_static_threshold_is_wrong_passes_both_checks() -> None:
    found = rows(stream(0.97, False, 300))
    assert len(found) == len(BOUNDS) * len(SEEDS)
    for row in found:
        assert row.ours.hits == 0
        assert row.static is None  # no static threshold is as accurate as serving nothing
        assert (row.within, row.enough) == (True, True)
        assert "none served" in row.cells()[6]


def test_a_learner_that_must_prove_its_bound_trails_a_perfect_static_threshold() -> None:
    found = rows(stream(0.97, True, 600), probation=0)
    for row in found:
        assert row.ours.wrong == 0
        # At 1% the proof takes 449 of the 600 requests: the ~140 served, none wrong, are too
        # few for the error line (0 of 143: Wilson upper 2.6%, over 1% + 1 point).
        assert row.within == (row.bound != 0.01)
        # The static 0.97 serves all 600 with no wrong answer; the learner first verified what
        # proves its bound (88 right outcomes at 5%, 224 at 2%, 449 at 1%).
        assert row.static_threshold is not None
        assert row.static is not None
        assert row.static.hit_rate == 1.0
        assert not row.enough
    proving = {0.01: 449, 0.02: 224, 0.05: 88}
    assert all(row.ours.verified >= proving[row.bound] for row in found)
    assert markdown(found).count("\n") == len(found) + 1


def test_probation_opens_a_clean_stream_after_a_hundred_right_outcomes() -> None:
    found = rows(stream(0.97, True, 600))
    for row in found:
        assert row.ours.wrong == 0
        # 100 judged before serving, then a share explored (10%, decaying).
        assert 100 <= row.ours.verified < 160
        assert row.ours.hits >= 440
        assert row.within


def test_probation_never_opens_where_wrong_outcomes_come_early() -> None:
    queries = stream(0.97, True, 600).queries
    for query in queries[::20]:  # one in 20 wrong (5%), the first among the first ones
        query.correct = False
    found = rows(Stream("five percent", queries))
    for row in found:
        if row.bound < 0.05:
            assert row.ours.hits == 0


def test_the_static_threshold_without_hindsight_is_chosen_on_the_tuning_stream() -> None:
    import io

    from rich.console import Console

    from benchmarks.semantic_replay import TUNED_ON, tuned_statics

    # Tuning: right at 0.97, wrong at 0.91; held out: wrong at 0.97 too. Chosen on the tuning
    # stream, 0.97 is within every bound there, and serves 100% wrong answers on the held-out one.
    tuning = Stream("tuning", stream(0.97, True, 50).queries + stream(0.91, False, 50).queries)
    held_out = Stream("held out", stream(0.97, False, 50).queries)
    streams = [tuning, tuning, tuning, held_out, tuning, held_out, held_out]
    assert {pair[1] for pair in TUNED_ON} == {3, 5, 6}
    output = io.StringIO()
    tuned_statics(Console(file=output, width=300), streams, rows(held_out))
    lines = [line for line in output.getvalue().splitlines() if "held out" in line and "%" in line]
    assert len(lines) == 9
    assert all("0.97" in line and "50, 50, 100.0%" in line and "FAIL" in line for line in lines)
