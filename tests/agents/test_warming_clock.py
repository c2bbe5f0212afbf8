"""Scheduled warming on the real clock: the wall clock is read again, so a suspend or a clock
step moves the schedule's runs to their wall time (virtual-time schedules: test_warming.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from rgruntime import ResonantGenesis
from rgruntime.agents import warming
from rgruntime.providers import SimulatedProvider

pytestmark = pytest.mark.anyio


class SteppedWallClock:
    """The machine's time from ``start`` on, plus the steps a test makes (a suspend, or an
    administrator or NTP setting the clock)."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._origin = time.monotonic()
        self.step = timedelta()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin) + self.step


async def test_a_clock_step_while_sleeping_moves_the_next_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = SteppedWallClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
    monkeypatch.setattr(warming, "_wall_clock", wall)
    monkeypatch.setattr(warming, "_RECHECK_SECONDS", 0.05)
    fired: list[datetime] = []

    ran = [anyio.Event(), anyio.Event()]

    async def job() -> None:
        fired.append(wall())
        # Set last: the schedule has its next run before the test's task runs again.
        ran[len(fired) - 1].set()

    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        schedule = await client.cache.schedule_warming("* * * * *", job)
        assert schedule.next_run == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        assert schedule.seconds_until_next() == pytest.approx(30, abs=1)
        await anyio.sleep(0.2)
        wall.step = timedelta(minutes=10)  # the machine slept ten minutes, or the clock was set
        assert schedule.seconds_until_next() == 0  # 00:01 is past: due now
        with anyio.fail_after(5):  # not the 30 s a schedule anchored at its start would sleep
            await ran[0].wait()
        assert len(fired) == 1
        assert fired[0] - datetime(2026, 1, 1, 0, 10, 30, tzinfo=UTC) < timedelta(seconds=2)
        # 00:02 to 00:10 passed during the step: skipped, not run in a burst.
        assert schedule.missed == 9
        assert schedule.next_run == datetime(2026, 1, 1, 0, 11, tzinfo=UTC)
        assert schedule.seconds_until_next() == pytest.approx(30, abs=1)

        wall.step = timedelta(minutes=10, seconds=29)  # 00:11 falls due in about a second
        with anyio.fail_after(5):
            await ran[1].wait()
        assert schedule.missed == 9
        assert schedule.next_run == datetime(2026, 1, 1, 0, 12, tzinfo=UTC)
