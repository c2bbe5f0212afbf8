"""The store breaker's pure steps, on a clock the test moves."""

from __future__ import annotations

import pytest

from rgruntime.runtime.breaker import FIRST_BACKOFF, LAST_BACKOFF, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_two_failures_open_it_and_a_probe_after_the_backoff_closes_it() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == "closed"  # one failure can be a blip
    breaker.failed()
    assert (breaker.state, breaker.opened) == ("open", 1)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(FIRST_BACKOFF)
    clock.now += FIRST_BACKOFF
    assert breaker.allow()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # one probe at a time
    breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_failed_probes_double_the_wait_up_to_the_last_backoff() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.failed()
    breaker.failed()
    waits = []
    for _ in range(8):
        waits.append(breaker.retry_in())
        clock.now += breaker.retry_in()
        assert breaker.allow()
        breaker.failed()
    assert waits[:3] == pytest.approx([FIRST_BACKOFF, FIRST_BACKOFF * 2, FIRST_BACKOFF * 4])
    assert max(waits) == pytest.approx(LAST_BACKOFF)
    assert breaker.opened == 1  # one outage, however many probes failed


def test_an_abandoned_probe_lets_the_next_call_probe_at_once() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.failed()
    breaker.failed()
    clock.now += FIRST_BACKOFF
    assert breaker.allow()
    breaker.abandoned()  # the probe was cancelled: no answer either way
    assert breaker.state == "open"
    assert breaker.allow()


def test_a_late_failure_of_a_call_made_before_it_opened_changes_nothing() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.failed()
    breaker.failed()
    retry = breaker.retry_in()
    breaker.failed()
    assert (breaker.state, breaker.opened, breaker.retry_in()) == ("open", 1, retry)
