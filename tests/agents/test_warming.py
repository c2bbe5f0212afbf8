"""Cache warming: the guide's ``warm_cache``, ``client.cache.warm`` (bounded concurrency,
progress, the report), scheduled warming on cron expressions (virtual time), bad input and
cancellation."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from rgruntime import (
    ConfigError,
    InvalidArgumentError,
    ResonantGenesis,
    RuntimeClosedError,
    WarmProgress,
    WarmReport,
)
from rgruntime.agents import AgentNotFoundError, AgentOutput, RunContext, warming
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

#: Where the wall clock stands when a test starts: 30 s into a minute. Under virtual time a
#: schedule's clock is the wall clock at its start plus the loop's time, so a test left on the
#: real wall clock started in the last second of a minute saw an every-minute schedule fire twice
#: in 61 s (about one run in sixty).
WALL_CLOCK_AT_START = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warming, "_wall_clock", lambda: WALL_CLOCK_AT_START)


COMMON_QUERIES = [
    "What are your business hours?",
    "How do I reset my password?",
    "What is your return policy?",
]


class SlowRunner:
    """An agent runner that takes ``delay`` seconds and counts how many run at once."""

    def __init__(self, delay: float = 2.0) -> None:
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.goals: list[str] = []
        self.fail_on: set[str] = set()
        self.empty_on: set[str] = set()

    async def __call__(self, context: RunContext) -> str | AgentOutput:
        self.goals.append(context.goal)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.running -= 1
        if context.goal in self.fail_on:
            raise ConnectionError(f"model down for {context.goal!r}")
        if context.goal in self.empty_on:
            return ""  # never cached
        return f"answer to {context.goal}"


def response_hit(result: Any) -> bool:
    return bool(result.cached and result.layer == "response")


async def test_the_guides_warm_cache_on_startup(client: ResonantGenesis) -> None:
    await client.agents.create(name="Support", agent_id="support_agent")

    # Warm cache with common queries
    async def warm_cache() -> None:
        common_queries = COMMON_QUERIES
        for query in common_queries:
            await client.sessions.execute(
                agent_id="support_agent",
                goal=query,
                cache_ttl=86400,  # 24 hours
            )

    await warm_cache()
    # Hits for a day, well past the response layer's default hour...
    await anyio.sleep(23 * 3600)
    for query in COMMON_QUERIES:
        assert response_hit(await client.sessions.execute("support_agent", query))
    # ...then a miss.
    await anyio.sleep(3601)
    assert not response_hit(await client.sessions.execute("support_agent", COMMON_QUERIES[0]))


async def test_warm_reports_each_goal_and_bounds_concurrency(client: ResonantGenesis) -> None:
    runner = SlowRunner(delay=2)
    agent = await client.agents.create(name="Support", runner=runner)
    await client.sessions.execute(agent.id, "already here")
    runner.fail_on = {"broken"}
    runner.empty_on = {"empty"}
    goals = [f"goal {number}" for number in range(10)] + ["already here", "broken", "empty"]
    steps: list[WarmProgress] = []

    started = anyio.current_time()
    report = await client.cache.warm(
        agent_id=agent.id,
        goals=[*goals, "goal 0"],  # each goal once
        cache_ttl=86400,
        concurrency=4,
        progress=steps.append,
    )
    assert isinstance(report, WarmReport)
    assert runner.max_running == 4  # the limit was reached, never passed
    # 12 goals ran (2 s each), 4 at a time: 3 rounds.
    assert anyio.current_time() - started == pytest.approx(6, abs=0.01)
    assert report.warmed == tuple(goals[:10])
    assert report.already_cached == ("already here",)
    assert report.not_cached == ("empty",)
    assert list(report.failed) == ["broken"]
    assert isinstance(report.failed["broken"], ConnectionError)
    assert (report.total, report.ok) == (13, False)
    assert report.duration == pytest.approx(6, abs=0.01)

    assert [step.done for step in steps] == list(range(1, 14))
    assert {step.total for step in steps} == {13}
    broken = next(step for step in steps if step.goal == "broken")
    assert (broken.outcome, type(broken.error)) == ("failed", ConnectionError)

    # Warmed means cached: the next identical requests are hits, for the warm's TTL.
    await anyio.sleep(7200)
    assert all([response_hit(await client.sessions.execute(agent.id, goal)) for goal in goals[:10]])
    assert runner.goals.count("goal 0") == 1


async def test_an_async_or_failing_progress_callback(
    client: ResonantGenesis, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await client.agents.create(name="Support", runner=SlowRunner(delay=1))
    seen: list[str] = []

    async def progress(step: WarmProgress) -> None:
        await anyio.sleep(0.5)
        seen.append(step.goal)
        if step.goal == "b":
            raise RuntimeError("progress bar crashed")

    with caplog.at_level(logging.ERROR, logger="rgruntime.warming"):
        report = await client.cache.warm(
            agent.id, ["a", "b", "c"], concurrency=1, progress=progress
        )
    assert seen == ["a", "b", "c"]  # warming went on
    assert report.warmed == ("a", "b", "c")
    assert "progress bar crashed" in caplog.text


async def test_bad_input_warms_nothing(client: ResonantGenesis) -> None:
    runner = SlowRunner()
    agent = await client.agents.create(name="Support", runner=runner)
    cases: list[tuple[dict[str, Any], str, Any, str]] = [
        ({"goals": "What are your hours?"}, "goals", "What are your hours?", "not one string"),
        ({"goals": ["ok", ""]}, "goals", "", "non-empty strings"),
        ({"goals": ["ok"], "concurrency": 0}, "concurrency", 0, "positive whole number"),
        ({"goals": ["ok"], "concurrency": True}, "concurrency", True, "positive whole number"),
        ({"goals": ["ok"], "cache_ttl": -1}, "cache_ttl", -1, "positive number of seconds"),
        ({"goals": ["ok"], "progress": "bar"}, "progress", "bar", "function"),
        ({"goals": ["ok"], "cache_tags": "faq"}, "cache_tags", "faq", "non-empty strings"),
        ({"goals": ["ok"], "cache_tags": [""]}, "cache_tags", "", "non-empty strings"),
    ]
    for arguments, field, value, accepted in cases:
        with pytest.raises(InvalidArgumentError) as caught:
            await client.cache.warm(agent.id, **arguments)
        assert (caught.value.field, caught.value.value) == (field, value)
        assert accepted in caught.value.accepted
    with pytest.raises(AgentNotFoundError):
        await client.cache.warm("agent_unknown", ["ok"])
    assert runner.goals == []  # nothing ran


async def test_a_cancelled_warm_leaves_nothing_running(client: ResonantGenesis) -> None:
    runner = SlowRunner(delay=10)
    agent = await client.agents.create(name="Support", runner=runner)
    with anyio.move_on_after(5):
        await client.cache.warm(agent.id, [f"goal {number}" for number in range(8)])
    await anyio.sleep(1)  # the loads, which belong to the layer, end at their cancellation
    assert runner.running == 0
    assert client.runtime.layer("response").statistics().loads_in_flight == 0
    runner.delay = 0
    assert (await client.cache.warm(agent.id, ["goal 0"])).warmed == ("goal 0",)


# -- scheduled warming ---------------------------------------------------------------------------


async def test_scheduled_warming_runs_on_its_cron_expression(client: ResonantGenesis) -> None:
    runner = SlowRunner(delay=1)
    agent = await client.agents.create(name="Support", agent_id="support_agent", runner=runner)
    schedule = await client.cache.schedule_warming(
        "0 0 * * *", agent_id=agent.id, goals=COMMON_QUERIES, cache_ttl=86400
    )
    assert schedule.active
    assert schedule.next_run is not None
    assert (schedule.next_run.hour, schedule.next_run.minute) == (0, 0)  # midnight, UTC
    assert schedule.next_run.tzinfo is UTC
    wait = schedule.seconds_until_next()
    assert wait is not None
    assert 0 < wait <= 86400

    await anyio.sleep(wait - 1)
    assert (schedule.runs, runner.goals) == (0, [])
    await anyio.sleep(3)  # it fires in 1 s; its goals take 1 s (concurrently)
    assert schedule.runs == 1
    assert schedule.last_report is not None
    assert schedule.last_report.warmed == tuple(COMMON_QUERIES)
    for query in COMMON_QUERIES:
        assert response_hit(await client.sessions.execute(agent.id, query))

    # The next night: warmed again (the answers are still cached: nothing runs).
    await anyio.sleep(86400)
    assert schedule.runs == 2
    assert schedule.last_report.already_cached == tuple(COMMON_QUERIES)
    assert len(runner.goals) == 3

    schedule.cancel()
    await anyio.sleep(1)
    assert not schedule.active
    await anyio.sleep(86400)
    assert schedule.runs == 2


async def test_a_schedule_runs_any_job_skips_overlaps_and_survives_failures(
    client: ResonantGenesis, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[float] = []

    async def job() -> str:
        runs.append(anyio.current_time())
        if len(runs) == 1:
            await anyio.sleep(150)  # outlasts two fire times of an every-minute schedule
        if len(runs) == 2:
            raise ValueError("warming failed")
        return "done"

    with caplog.at_level(logging.ERROR, logger="rgruntime.warming"):
        schedule = await client.cache.schedule_warming(
            "* * * * *", job, timezone=ZoneInfo("Europe/Paris")
        )
        assert schedule.next_run is not None
        assert schedule.next_run.tzinfo == ZoneInfo("Europe/Paris")
        await anyio.sleep(schedule.seconds_until_next() or 0)  # type: ignore[arg-type]
        await anyio.sleep(330)
    assert schedule.missed == 2
    assert schedule.failures == 1
    assert isinstance(schedule.last_error, ValueError)
    assert "warming failed" in caplog.text
    assert schedule.last_result == "done"
    assert schedule.runs >= 3
    # Consecutive runs are whole minutes apart: fire times, not "the end of the last run".
    # (Compared with the nearest whole minute: x % 60 of 119.9999999 would be 59.9999999.)
    minutes = [(later - runs[0]) / 60 for later in runs]
    assert all(abs(minute - round(minute)) < 0.001 for minute in minutes)
    assert [round(minute) for minute in minutes][:3] == [0, 3, 4]  # 1 and 2 were skipped


async def test_schedules_stop_with_the_client() -> None:
    async with ResonantGenesis(provider=SimulatedProvider(latency=1)) as client:
        agent = await client.agents.create(name="Support")
        schedule = await client.cache.schedule_warming(
            "*/5 * * * *", agent_id=agent.id, goals=["hi"]
        )
        assert schedule.active
    assert not schedule.active
    with pytest.raises(RuntimeClosedError):
        await client.cache.schedule_warming("*/5 * * * *", agent_id=agent.id, goals=["hi"])


@pytest.mark.parametrize(
    "cron", ["", "every day", "61 * * * *", "* * *", 5, "* * * * * *", "0 0 * * * 2026", "@daily"]
)
async def test_a_bad_cron_expression_is_refused(client: ResonantGenesis, cron: Any) -> None:
    agent = await client.agents.create(name="Support")
    with pytest.raises(ConfigError) as caught:
        await client.cache.schedule_warming(cron, agent_id=agent.id, goals=["hi"])
    assert (caught.value.field, caught.value.value) == ("cron", cron)
    assert "'0 0 * * *'" in caught.value.accepted


async def test_a_schedule_needs_goals_or_a_job(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support")

    async def job() -> None:
        pass

    with pytest.raises(InvalidArgumentError, match="either job= or agent_id="):
        await client.cache.schedule_warming("0 0 * * *", job, agent_id=agent.id, goals=["x"])
    with pytest.raises(InvalidArgumentError, match="agent_id= and goals="):
        await client.cache.schedule_warming("0 0 * * *", agent_id=agent.id)
    with pytest.raises(InvalidArgumentError, match="timezone"):
        await client.cache.schedule_warming("0 0 * * *", job, timezone="UTC")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="goals"):
        await client.cache.schedule_warming("0 0 * * *", agent_id=agent.id, goals="x")
    with pytest.raises(InvalidArgumentError, match="either job= or agent_id="):
        await client.cache.schedule_warming("0 0 * * *", job, cache_ttl=60)
    assert client._warmer is not None
    assert client._warmer.schedules == []  # nothing started


class AsyncCallable:
    async def __call__(self) -> None:
        pass


async def _takes_one(value: int) -> None:
    pass


async def _with_default(value: int = 1) -> None:
    pass


def _sync_job() -> None:
    pass


@pytest.mark.parametrize(
    "job",
    [lambda: None, lambda x: None, _sync_job, _takes_one, "warm_cache", 5],
    ids=["lambda", "lambda-x", "sync", "async-with-argument", "string", "number"],
)
async def test_a_job_must_be_an_async_function_taking_no_arguments(
    client: ResonantGenesis, job: Any
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await client.cache.schedule_warming("* * * * *", job)
    assert (caught.value.field, caught.value.value) == ("job", job)
    assert "async function taking no arguments" in caught.value.accepted
    assert client._warmer is not None
    assert client._warmer.schedules == []


async def test_async_callables_without_arguments_are_jobs(client: ResonantGenesis) -> None:
    jobs = [AsyncCallable(), _with_default, functools.partial(_takes_one, 2)]
    schedules = [await client.cache.schedule_warming("* * * * *", job) for job in jobs]
    await anyio.sleep(61)
    assert [schedule.runs for schedule in schedules] == [1, 1, 1]
    assert [schedule.failures for schedule in schedules] == [0, 0, 0]


async def test_progress_must_take_the_step(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support")
    with pytest.raises(InvalidArgumentError) as caught:
        await client.cache.warm(agent.id, ["hi"], progress=lambda: None)
    assert caught.value.field == "progress"


async def test_cancelled_and_stopped_schedules_leave_the_list(client: ResonantGenesis) -> None:
    async def job() -> None:
        pass

    assert client._warmer is not None
    schedules = [await client.cache.schedule_warming("* * * * *", job) for _ in range(3)]
    assert client._warmer.schedules == schedules
    schedules[1].cancel()
    await anyio.sleep(0.1)
    assert client._warmer.schedules == [schedules[0], schedules[2]]
    for schedule in schedules:
        schedule.cancel()
    await anyio.sleep(0.1)
    assert client._warmer.schedules == []


async def test_a_schedule_of_goals_takes_the_options_of_warm(client: ResonantGenesis) -> None:
    agent = await client.agents.create(name="Support", runner=SlowRunner(delay=1))
    steps: list[WarmProgress] = []
    await client.cache.schedule_warming(
        "0 * * * *",
        agent_id=agent.id,
        goals=["a", "b"],
        cache_ttl="1d",
        cache_tags=["faq"],
        concurrency=1,
        progress=steps.append,
    )
    await anyio.sleep(3600 + 3)
    assert [step.goal for step in steps] == ["a", "b"]
    assert await client.cache.invalidate(tags=["faq"]) == 2
    with pytest.raises(InvalidArgumentError) as caught:
        await client.cache.schedule_warming(
            "0 * * * *", agent_id=agent.id, goals=["a"], cache_tags="faq"
        )
    assert caught.value.field == "cache_tags"


# -- the schedule's clock ------------------------------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


async def fire_times(
    client: ResonantGenesis, monkeypatch: pytest.MonkeyPatch, start: datetime, until: datetime
) -> tuple[list[datetime], Any]:
    """The local times at which a ``0 9 * * *`` New York schedule started at ``start`` fired
    until ``until`` (the wall clock is ``start`` when it starts, then moves with the loop's)."""
    monkeypatch.setattr(warming, "_wall_clock", lambda: start.astimezone(UTC))
    fired: list[datetime] = []
    origin = anyio.current_time()

    async def job() -> None:
        # In UTC: aware datetimes of one zone add as wall times, blind to the DST change.
        fired.append(start.astimezone(UTC) + timedelta(seconds=anyio.current_time() - origin))

    schedule = await client.cache.schedule_warming("0 9 * * *", job, timezone=NEW_YORK)
    first = schedule.next_run
    wait = schedule.seconds_until_next()
    await anyio.sleep((until - start).total_seconds())
    schedule.cancel()
    return [moment.astimezone(NEW_YORK) for moment in fired], (first, wait, schedule)


def hours_between(times: list[datetime]) -> list[float]:
    utc = [moment.astimezone(UTC) for moment in times]
    return [round((b - a).total_seconds() / 3600, 3) for a, b in itertools.pairwise(utc)]


@pytest.mark.parametrize(
    ("start", "first", "hours_to_first", "utc_hour"),
    [
        # Saturday 12:00 EST (UTC-5); DST starts on Sunday March 8 at 2:00: a day of 23 hours.
        (
            datetime(2026, 3, 7, 12, tzinfo=NEW_YORK),
            datetime(2026, 3, 8, 9, tzinfo=NEW_YORK),
            20,
            13,
        ),
        # Saturday 12:00 EDT (UTC-4); DST ends on Sunday November 1 at 2:00: a day of 25 hours.
        (
            datetime(2026, 10, 31, 12, tzinfo=NEW_YORK),
            datetime(2026, 11, 1, 9, tzinfo=NEW_YORK),
            22,
            14,
        ),
    ],
    ids=["dst-starts", "dst-ends"],
)
async def test_a_daily_schedule_keeps_its_local_time_across_a_dst_change(
    client: ResonantGenesis,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    first: datetime,
    hours_to_first: int,
    utc_hour: int,
) -> None:
    fired, (next_run, wait, schedule) = await fire_times(
        client, monkeypatch, start, start + timedelta(days=4)
    )
    assert next_run == first
    assert wait == pytest.approx(hours_to_first * 3600)  # not 21 h, as wall-clock arithmetic says
    assert [moment.date() for moment in fired] == [
        (first + timedelta(days=day)).date() for day in range(4)
    ]
    # 9:00 local, to the second, every day.
    assert {(moment.hour, moment.minute, round(moment.second)) for moment in fired} == {(9, 0, 0)}
    assert {moment.astimezone(UTC).hour for moment in fired} == {utc_hour}
    assert hours_between([start, *fired]) == [hours_to_first, 24, 24, 24]
    assert schedule.missed == 0


# -- APScheduler ---------------------------------------------------------------------------------


def apscheduler_example() -> Any:
    """examples/guide_apscheduler.py as a module (its ClientJobs)."""
    path = Path(__file__).parents[2] / "examples" / "guide_apscheduler.py"
    spec = importlib.util.spec_from_file_location("guide_apscheduler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # APScheduler's scheduler is asyncio's
async def test_the_guides_apscheduler_example_on_asyncio(anyio_backend: str) -> None:
    import asyncio

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    jobs = apscheduler_example().ClientJobs()
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        await client.agents.create(name="Support", agent_id="support_agent")
        warmed = asyncio.Event()

        async def warm_cache() -> None:
            await client.cache.warm("support_agent", COMMON_QUERIES, cache_ttl=86400)
            warmed.set()

        # Schedule cache warming (once now as well, so that the test sees it run).
        scheduler = AsyncIOScheduler()
        job = scheduler.add_job(jobs.job(warm_cache), "cron", hour=0, next_run_time=datetime.now())
        scheduler.start()
        try:
            await asyncio.wait_for(warmed.wait(), timeout=30)
        finally:
            await jobs.close(scheduler)
        assert (job.next_run_time.hour, job.next_run_time.minute) == (0, 0)  # daily at midnight
        for query in COMMON_QUERIES:
            assert response_hit(await client.sessions.execute("support_agent", query))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("close", ["shutdown", "ClientJobs.close"])
async def test_no_apscheduler_job_outlives_the_client(anyio_backend: str, close: str) -> None:
    import asyncio

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    jobs = apscheduler_example().ClientJobs()
    started = asyncio.Event()
    ended = asyncio.Event()
    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        agent = await client.agents.create(name="Support", runner=SlowRunner(delay=600))

        async def warm_cache() -> None:
            started.set()
            try:
                await client.cache.warm(agent.id, ["a long warm"])
            finally:
                ended.set()

        scheduler = AsyncIOScheduler()
        scheduler.add_job(jobs.job(warm_cache), "cron", hour=0, next_run_time=datetime.now())
        scheduler.start()
        await asyncio.wait_for(started.wait(), timeout=30)
        if close == "shutdown":
            # What the example did: the shutdown is only queued, and would cancel the job
            # without waiting for it. The client would close under a running job.
            scheduler.shutdown(wait=False)
            assert not ended.is_set()
        else:
            await jobs.close(scheduler)
            assert ended.is_set()  # the job ended before the client closes
