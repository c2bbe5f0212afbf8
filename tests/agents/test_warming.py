"""Cache warming: the guide's ``warm_cache``, ``client.cache.warm`` (bounded concurrency,
progress, the report), scheduled warming on cron expressions (virtual time), bad input and
cancellation."""

from __future__ import annotations

import logging
from datetime import UTC
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
from rgruntime.agents import AgentNotFoundError, AgentOutput, RunContext
from rgruntime.providers import SimulatedProvider

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

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


@pytest.mark.parametrize("cron", ["", "every day", "61 * * * *", "* * *", 5])
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


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # APScheduler's scheduler is asyncio's
async def test_the_guides_apscheduler_example_on_asyncio(anyio_backend: str) -> None:
    import asyncio
    from datetime import datetime

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async with ResonantGenesis(provider=SimulatedProvider(latency=0)) as client:
        await client.agents.create(name="Support", agent_id="support_agent")
        warmed = asyncio.Event()

        async def warm_cache() -> None:
            await client.cache.warm("support_agent", COMMON_QUERIES, cache_ttl=86400)
            warmed.set()

        # Schedule cache warming (once now as well, so that the test sees it run).
        scheduler = AsyncIOScheduler()
        job = scheduler.add_job(warm_cache, "cron", hour=0, next_run_time=datetime.now())
        scheduler.start()
        try:
            await asyncio.wait_for(warmed.wait(), timeout=30)
        finally:
            scheduler.shutdown(wait=False)
        assert (job.next_run_time.hour, job.next_run_time.minute) == (0, 0)  # daily at midnight
        for query in COMMON_QUERIES:
            assert response_hit(await client.sessions.execute("support_agent", query))
