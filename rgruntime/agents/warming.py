"""Cache warming: run common goals ahead of the users who will ask them.

```python
report = await client.cache.warm(
    agent_id="support_agent",
    goals=["What are your business hours?", "How do I reset my password?"],
    cache_ttl=86400,
    concurrency=4,
    progress=lambda step: print(f"{step.done}/{step.total} {step.goal}: {step.outcome}"),
)
report.warmed, report.already_cached, report.not_cached, report.failed

schedule = await client.cache.schedule_warming(
    "0 0 * * *", agent_id="support_agent", goals=[...], cache_ttl=86400  # daily at midnight
)
schedule.next_run, schedule.runs, schedule.last_report
schedule.cancel()
```

**A warm** runs each goal once through ``client.sessions.execute`` (so it is cached under the very
key a user's request will look up), at most ``concurrency`` at a time, and reports each goal as
``warmed`` (it ran and its answer is now cached), ``already_cached`` (the cache answered: nothing
ran, and the entry keeps its TTL), ``not_cached`` (it ran but its answer was not cacheable: empty,
cut short, or caching off for the agent) or ``failed`` (it raised; the exception is kept). One
failing goal does not stop the others. ``progress`` (a function, or an async one) is called after
each goal with a :class:`WarmProgress`; if it raises, that is logged and warming goes on.

**A schedule** is a task in the client's task group: it sleeps until the cron expression's next
time, warms, and repeats until cancelled or until the client closes. Times are read in
``timezone`` (UTC by default) on the event loop's clock, so under a virtual clock (trio's
``MockClock``, looptime) schedules follow virtual time. A warm that outlasts the interval is not
overlapped: fire times that passed meanwhile are skipped and counted (``missed``). A schedule may
run any async function instead of goals (``job=``): the guide's ``warm_cache``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.abc
import attrs

from rgruntime.agents.agent import AgentRegistry
from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.runtime.arguments import check_tags
from rgruntime.runtime.layer import Layer
from rgruntime.units import parse_duration

if TYPE_CHECKING:
    from rgruntime.agents.client import SessionsAPI

__all__ = ["WarmProgress", "WarmReport", "Warmer", "WarmingSchedule", "check_cron"]

logger = logging.getLogger("rgruntime.warming")

Outcome = Literal["warmed", "already_cached", "not_cached", "failed"]

#: The guide's warming concurrency: enough to overlap model latency, few enough not to flood it.
DEFAULT_CONCURRENCY: Final = 4


@attrs.frozen(kw_only=True)
class WarmProgress:
    """One goal done: ``done`` of ``total``, its ``outcome`` (and ``error`` if it failed)."""

    agent_id: str
    goal: str
    outcome: Outcome
    done: int
    total: int
    error: Exception | None = None


@attrs.frozen(kw_only=True)
class WarmReport:
    """What one warm did, goal by goal (each goal once, in the order given)."""

    agent_id: str
    warmed: tuple[str, ...]
    already_cached: tuple[str, ...]
    not_cached: tuple[str, ...]
    failed: Mapping[str, Exception]
    #: Seconds on the event loop's clock.
    duration: float

    @property
    def total(self) -> int:
        return len(self.warmed) + len(self.already_cached) + len(self.not_cached) + len(self.failed)

    @property
    def ok(self) -> bool:
        return not self.failed


ProgressCallback = Callable[[WarmProgress], Awaitable[None] | None]


def check_cron(expression: object, field: str = "cron") -> str:
    """``expression`` if croniter accepts it (five fields: minute hour day month weekday)."""
    from croniter import croniter  # type: ignore[import-untyped]

    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise ConfigError(
            field,
            expression,
            "a cron expression of five fields (minute hour day-of-month month day-of-week), "
            "such as '0 0 * * *' (daily at midnight) or '*/15 * * * *'",
        )
    return expression


def _goal_list(goals: object) -> list[str]:
    if isinstance(goals, str) or not isinstance(goals, Iterable):
        raise InvalidArgumentError("goals", goals, "a list of goals, not one string")
    given = list(goals)
    for goal in given:
        if not isinstance(goal, str) or not goal.strip():
            raise InvalidArgumentError("goals", goal, "goals that are non-empty strings")
    return list(dict.fromkeys(given))  # each goal once, in the given order


def _concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError("concurrency", value, "a positive whole number")
    return value


def _progress(value: object) -> ProgressCallback | None:
    if value is not None and not callable(value):
        raise InvalidArgumentError("progress", value, "a function taking a WarmProgress, or None")
    return value  # type: ignore[return-value,unused-ignore]


class Warmer:
    """Runs warms and schedules them (``client.cache.warm``, ``client.cache.schedule_warming``)."""

    def __init__(
        self,
        agents: AgentRegistry,
        sessions: SessionsAPI,
        responses: Layer,
        group: anyio.abc.TaskGroup,
    ) -> None:
        self._agents = agents
        self._sessions = sessions
        self._responses = responses
        self._group = group
        self._closed = False
        self.schedules: list[WarmingSchedule] = []

    async def warm(
        self,
        agent_id: str,
        goals: Iterable[str],
        *,
        cache_ttl: float | str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        cache_tags: Iterable[str] = (),
    ) -> WarmReport:
        # Everything is checked before anything runs: a bad argument warms nothing.
        agent = self._agents.get(agent_id)
        unique = _goal_list(goals)
        if cache_ttl is not None:
            parse_duration(cache_ttl, field="cache_ttl", error=InvalidArgumentError)
        workers = _concurrency(concurrency)
        callback = _progress(progress)
        tags = sorted(check_tags(cache_tags, "cache_tags"))

        outcomes: dict[str, Outcome] = {}
        failed: dict[str, Exception] = {}
        started = anyio.current_time()
        pending = iter(unique)

        async def worker() -> None:
            # ``workers`` tasks share one iterator: never more goals at once than that.
            for goal in pending:
                error: Exception | None = None
                try:
                    result = await self._sessions.execute(
                        agent_id=agent.id, goal=goal, cache_ttl=cache_ttl, cache_tags=tags
                    )
                except Exception as failure:  # reported with its goal; the others go on
                    error = failure
                    outcome: Outcome = "failed"
                    failed[goal] = failure
                else:
                    if result.cached and result.layer == "response":
                        outcome = "already_cached"
                    elif result.cache_key is not None and result.cache_key in self._responses:
                        outcome = "warmed"
                    else:
                        outcome = "not_cached"
                outcomes[goal] = outcome
                if callback is not None:
                    await _report(
                        callback,
                        WarmProgress(
                            agent_id=agent.id,
                            goal=goal,
                            outcome=outcome,
                            done=len(outcomes),
                            total=len(unique),
                            error=error,
                        ),
                    )

        async with anyio.create_task_group() as group:
            for _ in range(min(workers, len(unique))):
                group.start_soon(worker)

        def having(outcome: Outcome) -> tuple[str, ...]:
            return tuple(goal for goal in unique if outcomes.get(goal) == outcome)

        return WarmReport(
            agent_id=agent.id,
            warmed=having("warmed"),
            already_cached=having("already_cached"),
            not_cached=having("not_cached"),
            failed=MappingProxyType({goal: failed[goal] for goal in unique if goal in failed}),
            duration=anyio.current_time() - started,
        )

    async def schedule(
        self,
        cron: str,
        job: Callable[[], Awaitable[Any]] | None = None,
        *,
        agent_id: str | None = None,
        goals: Iterable[str] | None = None,
        cache_ttl: float | str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        timezone: tzinfo | None = None,
        name: str | None = None,
    ) -> WarmingSchedule:
        expression = check_cron(cron)
        if timezone is not None and not isinstance(timezone, tzinfo):
            raise InvalidArgumentError("timezone", timezone, "a tzinfo such as ZoneInfo('UTC')")
        if job is not None:
            if agent_id is not None or goals is not None:
                raise InvalidArgumentError(
                    "job", job, "either job= or agent_id= with goals=, not both"
                )
            if not callable(job):
                raise InvalidArgumentError("job", job, "an async function taking no arguments")
            run = job
        else:
            if agent_id is None or goals is None:
                raise InvalidArgumentError(
                    "agent_id", agent_id, "agent_id= and goals= (or job=) for a warming schedule"
                )
            agent = self._agents.get(agent_id)
            unique = _goal_list(goals)
            if cache_ttl is not None:
                parse_duration(cache_ttl, field="cache_ttl", error=InvalidArgumentError)
            workers = _concurrency(concurrency)
            callback = _progress(progress)

            async def run() -> WarmReport:
                return await self.warm(
                    agent.id,
                    unique,
                    cache_ttl=cache_ttl,
                    concurrency=workers,
                    progress=callback,
                )

        if self._closed:
            raise RuntimeClosedError("the client is closed: no schedule can start")
        schedule = WarmingSchedule(
            expression,
            run,
            timezone or UTC,
            name or f"warming {expression!r}",
        )
        await self._group.start(schedule._run, name=f"rgruntime {schedule.name}")
        self.schedules.append(schedule)
        return schedule

    def _close(self) -> None:
        self._closed = True


async def _report(callback: ProgressCallback, step: WarmProgress) -> None:
    try:
        result = callback(step)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("warming progress callback %r failed on %r", callback, step)


class WarmingSchedule:
    """A cron-scheduled warm running in the client's task group (see the module documentation)."""

    def __init__(
        self,
        cron: str,
        job: Callable[[], Awaitable[Any]],
        timezone: tzinfo,
        name: str,
    ) -> None:
        self.cron = cron
        self.name = name
        self.timezone = timezone
        self._job = job
        self._scope = anyio.CancelScope()
        #: Runs that finished (whether the job raised or not), runs whose job raised, fire times
        #: skipped because the previous run was still going.
        self.runs = 0
        self.failures = 0
        self.missed = 0
        #: What the last run returned (a WarmReport for goals), and the last exception a run raised.
        self.last_result: Any = None
        self.last_error: Exception | None = None
        #: When the next run is due, in ``timezone`` (None once the schedule stopped).
        self.next_run: datetime | None = None
        self._origin_wall: datetime | None = None
        self._origin_loop = 0.0

    def __repr__(self) -> str:
        return f"<WarmingSchedule {self.name} runs={self.runs} next={self.next_run}>"

    @property
    def last_report(self) -> WarmReport | None:
        result = self.last_result
        return result if isinstance(result, WarmReport) else None

    @property
    def active(self) -> bool:
        return self.next_run is not None

    def cancel(self) -> None:
        """Stop the schedule (a run in progress is cancelled)."""
        self._scope.cancel()

    def seconds_until_next(self) -> float | None:
        """Seconds on the event loop's clock until the next run (None once stopped)."""
        if self.next_run is None:
            return None
        return max(0.0, (self.next_run - self._now()).total_seconds())

    def _now(self) -> datetime:
        # Wall time advanced by the loop's clock since the schedule started: one clock for
        # sleeping and for reading the cron, which under a virtual clock is virtual time.
        assert self._origin_wall is not None
        elapsed = anyio.current_time() - self._origin_loop
        return self._origin_wall + timedelta(seconds=elapsed)

    def _deadline(self, when: datetime) -> float:
        assert self._origin_wall is not None
        return self._origin_loop + (when - self._origin_wall).total_seconds()

    async def _run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        from croniter import croniter

        self._origin_wall = datetime.now(self.timezone)
        self._origin_loop = anyio.current_time()
        times = croniter(self.cron, self._origin_wall)
        self.next_run = times.get_next(datetime)
        task_status.started()
        try:
            with self._scope:
                while True:
                    assert self.next_run is not None
                    await anyio.sleep_until(self._deadline(self.next_run))
                    try:
                        self.last_result = await self._job()
                    except Exception as error:  # logged and kept; the schedule goes on
                        self.failures += 1
                        self.last_error = error
                        logger.exception("scheduled warming %s failed", self.name)
                    self.runs += 1
                    now = self._now()
                    following = times.get_next(datetime)
                    while following <= now:  # the run outlasted these: skip, do not pile up
                        self.missed += 1
                        following = times.get_next(datetime)
                    self.next_run = following
        finally:
            self.next_run = None
