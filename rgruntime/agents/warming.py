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
time, warms, and repeats until cancelled or until the client closes. The expression has exactly
five fields and is read in ``timezone`` (UTC by default); its times are compared and slept to in
UTC, so a daily ``0 9 * * *`` stays at 9:00 local time across daylight-saving changes. On the
real clock the wall clock is read again at every step (and at least every minute of a long
sleep): after a suspend or a clock step, runs happen at their wall time. Under a virtual clock
(trio's ``MockClock``, looptime) the schedule's time is the wall time it started at plus the
loop's elapsed time, so schedules follow virtual time. A warm that outlasts the interval is not
overlapped: fire times that passed meanwhile are skipped and counted (``missed``). A schedule may
run any async function taking no arguments instead of goals (``job=``): the guide's
``warm_cache``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, TypedDict, Unpack

import anyio
import anyio.abc
import attrs
import sniffio

from rgruntime.agents.agent import AgentRegistry
from rgruntime.agents.execution import ExecutionResult
from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.runtime.arguments import check_tags
from rgruntime.runtime.layer import Layer
from rgruntime.units import parse_duration


class SessionsLike(Protocol):
    """What a warm needs of ``client.sessions``: to execute a goal as a user would (a Protocol,
    so that this module does not import the client that builds it)."""

    async def execute(
        self,
        agent_id: str,
        goal: str,
        session_id: str | None = None,
        cache: bool = True,
        cache_ttl: float | str | None = None,
        cache_tags: Iterable[str] = (),
    ) -> ExecutionResult: ...


__all__ = [
    "WarmOptions",
    "WarmProgress",
    "WarmReport",
    "Warmer",
    "WarmingMethods",
    "WarmingSchedule",
    "check_cron",
    "check_job",
]

logger = logging.getLogger("rgruntime.warming")

Outcome = Literal["warmed", "already_cached", "not_cached", "failed"]

#: The guide's warming concurrency: enough to overlap model latency, few enough not to flood it.
DEFAULT_CONCURRENCY: Final = 4

#: On the real clock, the longest a schedule sleeps before reading the wall clock again: a
#: suspend or a clock step during a long sleep is noticed within this many seconds.
_RECHECK_SECONDS: Final = 60.0

_CRON_ACCEPTED: Final = (
    "a cron expression of exactly five fields (minute hour day-of-month month day-of-week), "
    "such as '0 0 * * *' (daily at midnight) or '*/15 * * * *'"
)
_JOB_ACCEPTED: Final = "an async function taking no arguments, such as `async def warm_cache():`"


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


class WarmOptions(TypedDict, total=False):
    """The options of a warm, the same for ``warm`` and for a schedule of goals."""

    #: The warmed answers' TTL (seconds or ``"1d"``); default: the agent's.
    cache_ttl: float | str | None
    #: Goals run at once (default 4).
    concurrency: int
    #: Called after each goal with a :class:`WarmProgress` (a function or an async function).
    progress: ProgressCallback | None
    #: Tags of the warmed answers.
    cache_tags: Iterable[str]


def check_cron(expression: object, field: str = "cron") -> str:
    """``expression`` if it has exactly five fields (minute hour day month weekday) that croniter
    accepts; croniter alone would also take a sixth field (seconds) or ``@daily``."""
    from croniter import croniter  # type: ignore[import-untyped]

    if (
        not isinstance(expression, str)
        or len(expression.split()) != 5
        or not croniter.is_valid(expression)
    ):
        raise ConfigError(field, expression, _CRON_ACCEPTED)
    return expression


def _takes(function: Callable[..., object], *arguments: object) -> bool:
    """Whether ``function`` can be called with ``arguments`` (True when its signature is
    unreadable, as for some builtins: then only a call can tell)."""
    try:
        inspect.signature(function).bind(*arguments)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def check_job(job: object, field: str = "job") -> Callable[[], Awaitable[Any]]:
    """``job`` if it is an async function (or an object with an async ``__call__``, or a
    ``functools.partial`` of one) callable without arguments: refused now rather than failing
    at every fire."""
    if not callable(job):
        raise InvalidArgumentError(field, job, _JOB_ACCEPTED)
    asynchronous = inspect.iscoroutinefunction(job) or inspect.iscoroutinefunction(job.__call__)
    if not asynchronous or not _takes(job):
        raise InvalidArgumentError(field, job, _JOB_ACCEPTED)
    return job


def _goal_list(goals: object) -> tuple[str, ...]:
    if isinstance(goals, str) or not isinstance(goals, Iterable):
        raise InvalidArgumentError("goals", goals, "a list of goals, not one string")
    given = list(goals)
    for goal in given:
        if not isinstance(goal, str) or not goal.strip():
            raise InvalidArgumentError("goals", goal, "goals that are non-empty strings")
    return tuple(dict.fromkeys(given))  # each goal once, in the given order


def _concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError("concurrency", value, "a positive whole number")
    return value


def _progress(value: object) -> ProgressCallback | None:
    if value is not None and (not callable(value) or not _takes(value, None)):
        raise InvalidArgumentError("progress", value, "a function taking a WarmProgress, or None")
    return value  # type: ignore[return-value,unused-ignore]


@attrs.frozen(kw_only=True)
class _Warm:
    """A warm's arguments, checked: what one warm runs, now or at each fire of a schedule."""

    agent_id: str
    goals: tuple[str, ...]
    cache_ttl: float | str | None
    concurrency: int
    progress: ProgressCallback | None
    tags: tuple[str, ...]

    @classmethod
    def check(
        cls,
        agents: AgentRegistry,
        agent_id: str,
        goals: Iterable[str],
        *,
        cache_ttl: float | str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        cache_tags: Iterable[str] = (),
    ) -> _Warm:
        # Everything is checked before anything runs: a bad argument warms nothing.
        agent = agents.get(agent_id)
        unique = _goal_list(goals)
        if cache_ttl is not None:
            parse_duration(cache_ttl, field="cache_ttl", error=InvalidArgumentError)
        return cls(
            agent_id=agent.id,
            goals=unique,
            cache_ttl=cache_ttl,
            concurrency=_concurrency(concurrency),
            progress=_progress(progress),
            tags=tuple(sorted(check_tags(cache_tags, "cache_tags"))),
        )


class Warmer:
    """Runs warms and schedules them (``client.cache.warm``, ``client.cache.schedule_warming``)."""

    def __init__(
        self,
        agents: AgentRegistry,
        sessions: SessionsLike,
        responses: Layer,
        group: anyio.abc.TaskGroup,
    ) -> None:
        self._agents = agents
        self._sessions = sessions
        self._responses = responses
        self._group = group
        self._closed = False
        #: The schedules running now (a schedule leaves once cancelled or stopped).
        self.schedules: list[WarmingSchedule] = []

    def plan(self, agent_id: str, goals: Iterable[str], **options: Unpack[WarmOptions]) -> _Warm:
        """The warm's arguments, checked (nothing runs)."""
        return _Warm.check(self._agents, agent_id, goals, **options)

    async def run(self, plan: _Warm) -> WarmReport:
        """Run a checked warm."""
        outcomes: dict[str, Outcome] = {}
        failed: dict[str, Exception] = {}
        started = anyio.current_time()
        pending = iter(plan.goals)
        callback = plan.progress

        async def worker() -> None:
            # ``concurrency`` tasks share one iterator: never more goals at once than that.
            for goal in pending:
                error: Exception | None = None
                try:
                    result = await self._sessions.execute(
                        agent_id=plan.agent_id,
                        goal=goal,
                        cache_ttl=plan.cache_ttl,
                        cache_tags=plan.tags,
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
                            agent_id=plan.agent_id,
                            goal=goal,
                            outcome=outcome,
                            done=len(outcomes),
                            total=len(plan.goals),
                            error=error,
                        ),
                    )

        async with anyio.create_task_group() as group:
            for _ in range(min(plan.concurrency, len(plan.goals))):
                group.start_soon(worker)

        def having(outcome: Outcome) -> tuple[str, ...]:
            return tuple(goal for goal in plan.goals if outcomes.get(goal) == outcome)

        return WarmReport(
            agent_id=plan.agent_id,
            warmed=having("warmed"),
            already_cached=having("already_cached"),
            not_cached=having("not_cached"),
            failed=MappingProxyType({goal: failed[goal] for goal in plan.goals if goal in failed}),
            duration=anyio.current_time() - started,
        )

    async def start(self, schedule: WarmingSchedule) -> WarmingSchedule:
        """Run ``schedule`` in the client's task group (listed in ``schedules`` while it runs)."""
        if self._closed:
            raise RuntimeClosedError("the client is closed: no schedule can start")
        await self._group.start(self._keep, schedule, name=f"rgruntime {schedule.name}")
        return schedule

    async def _keep(
        self,
        schedule: WarmingSchedule,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        # Listed while it runs, and only then: cancelled schedules must not pile up.
        self.schedules.append(schedule)
        try:
            await schedule.run(task_status=task_status)
        finally:
            self.schedules.remove(schedule)

    def close(self) -> None:
        """The client is closing: no new warming starts."""
        self._closed = True


class WarmingMethods:
    """``client.cache.warm`` and ``client.cache.schedule_warming``: the cache namespace's class
    mixes them in and says where its :class:`Warmer` is (``_warming``)."""

    def _warming(self) -> Warmer:
        raise NotImplementedError

    async def warm(
        self, agent_id: str, goals: Iterable[str], **options: Unpack[WarmOptions]
    ) -> WarmReport:
        """Run ``goals`` for ``agent_id`` so that their answers are cached; report each as
        warmed, already cached, not cacheable or failed (see the module documentation).
        Options: ``cache_ttl``, ``concurrency`` (4), ``progress`` (called after each goal),
        ``cache_tags``; all checked before anything runs."""
        warmer = self._warming()
        return await warmer.run(warmer.plan(agent_id, goals, **options))

    async def schedule_warming(
        self,
        cron: str,
        job: Callable[[], Awaitable[Any]] | None = None,
        *,
        agent_id: str | None = None,
        goals: Iterable[str] | None = None,
        timezone: tzinfo | None = None,
        name: str | None = None,
        **options: Unpack[WarmOptions],
    ) -> WarmingSchedule:
        """Warm on a cron schedule (five fields; ``"0 0 * * *"``: daily at midnight, in
        ``timezone``, UTC by default) until cancelled or the client closes: ``agent_id`` with
        ``goals`` and the options of :meth:`warm`, or any async ``job`` taking no arguments."""
        warmer = self._warming()
        expression = check_cron(cron)
        if timezone is not None and not isinstance(timezone, tzinfo):
            raise InvalidArgumentError("timezone", timezone, "a tzinfo such as ZoneInfo('UTC')")
        run: Callable[[], Awaitable[Any]]
        if job is not None:
            if agent_id is not None or goals is not None or options:
                raise InvalidArgumentError(
                    "job",
                    job,
                    "either job= or agent_id= with goals= (and the warm's options), not both",
                )
            run = check_job(job)
        else:
            if agent_id is None or goals is None:
                raise InvalidArgumentError(
                    "agent_id", agent_id, "agent_id= and goals= (or job=) for a warming schedule"
                )
            run = functools.partial(warmer.run, warmer.plan(agent_id, goals, **options))
        schedule = WarmingSchedule(
            expression, run, timezone or UTC, name or f"warming {expression!r}"
        )
        return await warmer.start(schedule)


async def _report(callback: ProgressCallback, step: WarmProgress) -> None:
    try:
        result = callback(step)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("warming progress callback %r failed on %r", callback, step)


def _wall_clock() -> datetime:
    """The machine's wall clock, in UTC (a function of its own, so that tests can set it)."""
    return datetime.now(UTC)


def _loop_clock_is_real() -> bool:
    """Whether the running loop's clock is the machine's (else a virtual clock of tests).

    The standard asyncio loop's ``time()`` is ``BaseEventLoop.time`` (uvloop's is real too);
    trio's default clock is its ``SystemClock``. Virtual-time loops override ``time()``, and
    trio's ``MockClock`` is another class.
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        loop_type = type(asyncio.get_running_loop())
        return loop_type.time is asyncio.BaseEventLoop.time or loop_type.__module__.startswith(
            "uvloop"
        )
    if library == "trio":
        import trio

        return type(trio.lowlevel.current_clock()).__name__ == "SystemClock"
    return False


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
        #: skipped because the previous run was still going (or the clock jumped past them).
        self.runs = 0
        self.failures = 0
        self.missed = 0
        #: What the last run returned (a WarmReport for goals), and the last exception a run raised.
        self.last_result: Any = None
        self.last_error: Exception | None = None
        #: When the next run is due, in ``timezone`` (None once the schedule stopped).
        self.next_run: datetime | None = None
        # The clock: on the real one, the wall clock read each time; on a virtual one, the wall
        # time (UTC) at the start plus the loop's time elapsed since then.
        self._real_clock = True
        self._origin_wall = datetime.fromtimestamp(0, UTC)
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
        """Seconds until the next run (None once stopped)."""
        if self.next_run is None:
            return None
        return max(0.0, (self.next_run - self._now()).total_seconds())

    def _now(self) -> datetime:
        """Now, in UTC. Aware datetimes of one zone subtract as wall times, blind to a DST
        change between them: every computation here is in UTC."""
        if self._real_clock:
            # Read again each time: a suspend stops the loop's monotonic clock, a clock step
            # moves the wall clock, and either would shift an anchored schedule for ever.
            return _wall_clock()
        return self._origin_wall + timedelta(seconds=anyio.current_time() - self._origin_loop)

    async def _sleep_until(self, when: datetime) -> None:
        target = when.astimezone(UTC)
        if not self._real_clock:
            # One absolute deadline on the loop's clock: exact under virtual time.
            deadline = self._origin_loop + (target - self._origin_wall).total_seconds()
            await anyio.sleep_until(deadline)
            return
        while True:
            remaining = (target - self._now()).total_seconds()
            if remaining <= 0:
                return
            await anyio.sleep(min(remaining, _RECHECK_SECONDS))

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        from croniter import croniter

        self._real_clock = _loop_clock_is_real()
        self._origin_wall = _wall_clock()
        self._origin_loop = anyio.current_time()
        # croniter walks the expression in the schedule's zone (9:00 stays 9:00 local across a
        # DST change); its times are compared and slept to in UTC.
        times = croniter(self.cron, self._origin_wall.astimezone(self.timezone))
        self.next_run = times.get_next(datetime)
        task_status.started()
        try:
            with self._scope:
                while True:
                    assert self.next_run is not None
                    await self._sleep_until(self.next_run)
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
