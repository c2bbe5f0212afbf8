"""The core hot paths: hit, overwrite, insert with eviction, miss with load, on asyncio and trio.

Every figure is nanoseconds per operation, measured beside the peers in the same process:
``dict``, ``cachetools.LRUCache``, cashews' ``Memory`` backend awaited directly (asyncio only),
an ``async def`` over a dict (the floor for any awaited call) and, for loads, the two floors of a
miss: the loader awaited inline, and a bare anyio task + Event round trip.

Method (the machine is noisy: 2 cores shared with other work):

- 10,000 resident ``str`` keys; the accessed keys are drawn uniformly from them with
  ``random.Random(0)`` and pre-generated, so every implementation sees the same sequence.
  Inserts and loads use fresh keys (new ones every round, the same for every implementation),
  hashed before timing so that no implementation pays for computing a string's hash.
- Rounds are interleaved: each round times every implementation once over the whole sequence, in
  an order rotated from round to round, so slow spells of the machine spread over all of them.
- The backends alternate in blocks of 3 rounds (each block in its own ``anyio.run`` with fresh
  fixtures), so that asyncio and trio also share the machine's slow spells. Each block starts
  with an untimed warm-up round of a fifth of the operations: it lets the interpreter
  specialise the new loops, and is followed by a check that hits hit and inserts evict.
- The collector is kept off during each timing, and run between rounds instead. Timings of the
  cheap rows over the resident keys are preceded by an untimed pass over the first 20,000 keys,
  which brings that implementation's data back into the CPU caches (the collection and the
  implementation timed before it push it out; refilling would cost ~1.5 ms, charged mostly to
  the cheapest rows).
- Every implementation runs in the same loop, compiled from one template (``for key in keys:``
  then one statement), so the loop's own overhead is part of every figure equally.
- Times are this process's CPU time (``time.process_time_ns``): the operations run on the event
  loop's one thread and never wait for I/O, so CPU time is their whole cost, while the wall
  clock would also charge them whatever time the scheduler gave to other work on the machine.
  The wall clock is recorded too; its ratio to CPU time is printed under each table.
- The minimum over the rounds is the least disturbed figure (noise only adds time); the median
  shows the spread. Ratios are computed from the minima.
- rgruntime's writes are amortised: a batch of writes is timed together with a final
  ``await layer.cleanup()``, which has the layer's actor apply every buffered write (indices,
  policy) and evict down to ``max_entries``. A write that fills the buffer (4,096 by default)
  already waits for the actor inside the batch, so the figure holds all the actor's work, divided
  by the batch size. cashews and cachetools evict inside the call, so they need no such step.
"""

from __future__ import annotations

import enum
import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import anyio.abc
from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks import RunOptions
from benchmarks._harness import (
    Figures,
    Stopwatch,
    frozen_heap,
    gc_paused,
    stderr_note,
    stopwatch,
)
from rgruntime import Runtime, open_runtime

__all__ = ["run"]

RESIDENT_KEYS: Final = 10_000
TTL_SECONDS: Final = 300
VALUE: Final = "a cached tool result"
BACKENDS: Final = ("asyncio", "trio")
#: Untimed operations before each timing over the resident keys (they touch ~86% of them).
WARM_OPS: Final = 20_000
#: Rounds measured on one backend before switching to the other.
BLOCK_ROUNDS: Final = 3
#: The untimed warm-up round of each block runs this share of a round's operations.
WARM_UP_SHARE: Final = 5

Hook = Callable[[], Awaitable[object]]
Loader = Callable[[], Awaitable[Any]]
Loop = Callable[[Sequence[str], Any, object, Loader], Awaitable[None]]

RUNTIME_CONFIG: Final = {
    "layers": {
        # `tool` keeps its built-in defaults (TTL 300 s, unbounded): the hit and overwrite layer.
        "bounded": {"ttl": TTL_SECONDS, "max_entries": RESIDENT_KEYS},
        "loads": {"ttl": TTL_SECONDS, "max_entries": RESIDENT_KEYS},
    }
}


@dataclass(frozen=True)
class Plan:
    rounds: int
    #: Operations per round for hits, overwrites and inserts.
    ops: int
    #: Operations per round for miss + load: each crosses to another task, about 100 times
    #: dearer than a hit, so fewer of them keep a full run within its time budget.
    load_ops: int

    @classmethod
    def of(cls, options: RunOptions) -> Plan:
        if options.quick:
            return cls(rounds=options.rounds or 3, ops=20_000, load_ops=2_000)
        return cls(rounds=options.rounds or 15, ops=100_000, load_ops=5_000)

    def blocks(self) -> list[range]:
        """The rounds, cut into blocks that alternate between the backends (see `run`)."""
        return [
            range(start, min(start + BLOCK_ROUNDS, self.rounds))
            for start in range(0, self.rounds, BLOCK_ROUNDS)
        ]


class Keys(enum.Enum):
    """Which key sequence a case runs over."""

    RESIDENT = "resident"  # the uniform sequence over the 10,000 resident keys
    FRESH = "fresh"  # this round's new keys
    FRESH_LOADS = "fresh loads"  # the first `load_ops` of them


class Group(enum.Enum):
    HIT = "hit"
    OVERWRITE = "overwrite"
    INSERT = "insert + evict"
    LOAD = "miss + load"


_LOOP_TEMPLATE = """\
async def loop(keys, target, value, loader):
    for key in keys:
        {statement}
    {finish}
"""


def compile_loop(statement: str, finish: str = "") -> Loop:
    """The timed loop around one statement; every case gets this same loop (as timeit does)."""
    source = _LOOP_TEMPLATE.format(statement=statement, finish=finish or "pass")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<benchmark loop: {statement}>", "exec"), namespace)
    loop: Loop = namespace["loop"]
    return loop


@dataclass
class Case:
    """One implementation doing one operation, and its figures."""

    id: str  # stable name, used by the acceptance checks
    implementation: str
    group: Group
    operation: str
    statement: str  # the loop body: sees `key`, `target`, `value` and `loader`
    target: object
    keys: Keys = Keys.RESIDENT
    finish: str = ""  # runs once after the loop, inside the timing (amortised actor work)
    #: Warm the CPU caches before each timing over the resident keys (see `_time`). Rows that
    #: cost microseconds per operation skip it: a cold start is ~0.2% of their timing.
    warm: bool = True
    setup: Hook | None = None  # untimed, before each timing
    teardown: Hook | None = None  # untimed, after each timing
    figures: Figures = field(default_factory=Figures)
    loop: Loop = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.loop = compile_loop(self.statement, self.finish)


# -- the floors ------------------------------------------------------------------------------


class AsyncDict:
    """The floor for an awaited call: an ``async def`` doing nothing but the dict work."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, object]) -> None:
        self._data = data

    async def get(self, key: str, default: object = None) -> object:
        return self._data.get(key, default)

    async def set(self, key: str, value: object) -> None:
        self._data[key] = value


_ABSENT: Final = object()


class InlineLoads:
    """A miss without crossing tasks: the loader awaited in the caller's task, then stored."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, object] = {}

    async def get_or_load(self, key: str, loader: Loader) -> object:
        value = self._data.get(key, _ABSENT)
        if value is _ABSENT:
            value = self._data[key] = await loader()
        return value

    async def clear(self) -> None:
        self._data.clear()


class TaskHandoff:
    """The least a load run in another task costs on anyio: start a task, wait on an Event.

    rgruntime runs each load in the layer's task group (so a cancelled caller does not cancel
    the load for the others): this is the part of its miss that no implementation can avoid.
    """

    __slots__ = ("_group",)

    def __init__(self, group: anyio.abc.TaskGroup) -> None:
        self._group = group

    async def get_or_load(self, key: str, loader: Loader) -> object:
        done = anyio.Event()
        result: list[object] = []
        self._group.start_soon(self._load, loader, result, done)
        await done.wait()
        return result[0]

    @staticmethod
    async def _load(loader: Loader, result: list[object], done: anyio.Event) -> None:
        result.append(await loader())
        done.set()


async def load_value() -> str:
    """The trivial loader of the miss + load rows."""
    return VALUE


# -- the cases -------------------------------------------------------------------------------


def _peer_cases(resident: Sequence[str], group: anyio.abc.TaskGroup) -> list[Case]:
    from cachetools import LRUCache

    data: dict[str, object] = dict.fromkeys(resident, VALUE)
    lru: LRUCache[str, object] = LRUCache(maxsize=RESIDENT_KEYS)
    lru_bounded: LRUCache[str, object] = LRUCache(maxsize=RESIDENT_KEYS)
    for key in resident:
        lru[key] = lru_bounded[key] = VALUE
    async_dict = AsyncDict(data)
    inline = InlineLoads()
    lru_name = "cachetools.LRUCache"
    floor = "async def over dict (floor)"
    return [
        Case("dict.get", "dict", Group.HIT, "d.get(k)", "target.get(key)", data),
        Case("cachetools.get", lru_name, Group.HIT, "c.get(k)", "target.get(key)", lru),
        Case("floor.get", floor, Group.HIT, "await get(k)", "await target.get(key)", async_dict),
        Case("dict.set", "dict", Group.OVERWRITE, "d[k] = v", "target[key] = value", data),
        Case("cachetools.set", lru_name, Group.OVERWRITE, "c[k] = v", "target[key] = value", lru),
        Case(
            "floor.set", floor, Group.OVERWRITE, "await set(k, v)", "await target.set(key, value)",
            async_dict,
        ),
        Case(
            "cachetools.insert", lru_name, Group.INSERT, "c[new k] = v (evicts one)",
            "target[key] = value", lru_bounded, keys=Keys.FRESH,
        ),
        Case(
            "floor.load_inline", "async def over dict, loader awaited inline (floor)",
            Group.LOAD, "await get_or_load(new k, loader)",
            "await target.get_or_load(key, loader)", inline, keys=Keys.FRESH_LOADS,
            setup=inline.clear,
        ),
        Case(
            "floor.load_task", "anyio start_soon + Event round trip (floor)", Group.LOAD,
            "await get_or_load(new k, loader)", "await target.get_or_load(key, loader)",
            TaskHandoff(group), keys=Keys.FRESH_LOADS,
        ),
    ]  # fmt: skip


async def _cashews_cases(resident: Sequence[str]) -> list[Case]:
    """cashews' Memory backend, awaited directly (asyncio only: it uses asyncio primitives).

    ``init()`` starts a sweeper task that walks every key once a second. It is started before
    and stopped (``close()``, which awaits the task) after each cashews timing, so that it can
    never run inside another implementation's timed section, and no task is left to be
    destroyed when the loop closes. It cannot run inside cashews' own loop either: nothing in
    that loop suspends.
    """
    from cashews.backends.memory import Memory

    memory = Memory(size=RESIDENT_KEYS)
    bounded = Memory(size=RESIDENT_KEYS)
    for key in resident:
        # With `expire`, every get compares the entry's deadline with the clock, as our TTL
        # layer does.
        await memory.set(key, VALUE, expire=TTL_SECONDS)
        await bounded.set(key, VALUE, expire=TTL_SECONDS)
    name = "cashews Memory, awaited (asyncio only)"
    setting = f"await target.set(key, value, expire={TTL_SECONDS})"
    return [
        Case(
            "cashews.get", name, Group.HIT, "await get(k)", "await target.get(key)", memory,
            setup=memory.init, teardown=memory.close,
        ),
        Case(
            "cashews.set", name, Group.OVERWRITE, f"await set(k, v, expire={TTL_SECONDS})",
            setting, memory, setup=memory.init, teardown=memory.close,
        ),
        Case(
            "cashews.insert", name, Group.INSERT, "await set(new k, v, expire=…) (evicts one)",
            setting, bounded, keys=Keys.FRESH, setup=bounded.init, teardown=bounded.close,
        ),
    ]  # fmt: skip


async def _rgruntime_cases(runtime: Runtime, resident: Sequence[str]) -> list[Case]:
    tool, bounded, loads = (runtime.layer(name) for name in ("tool", "bounded", "loads"))
    for layer in (tool, bounded, loads):
        for key in resident:
            await layer.set(key, VALUE)
        await layer.cleanup()
    cleanup = "await target.cleanup()"
    tool_name = f"rgruntime `tool` layer (TTL {TTL_SECONDS} s)"
    bounded_name = f"rgruntime layer, max_entries {RESIDENT_KEYS:,}"
    return [
        Case("rgruntime.get", tool_name, Group.HIT, "await get(k)", "await target.get(key)", tool),
        Case(
            "rgruntime.get_nowait", tool_name, Group.HIT, "get_nowait(k)",
            "target.get_nowait(key)", tool,
        ),
        Case(
            "rgruntime.set", tool_name, Group.OVERWRITE, "await set(k, v); cleanup() at the end",
            "await target.set(key, value)", tool, finish=cleanup, warm=False,
        ),
        Case(
            "rgruntime.insert", bounded_name, Group.INSERT,
            "await set(new k, v) (evicts one); cleanup() at the end",
            "await target.set(key, value)", bounded, keys=Keys.FRESH, finish=cleanup,
        ),
        Case(
            "rgruntime.load", bounded_name, Group.LOAD,
            "await get_or_load(new k, loader) (evicts one)",
            "await target.get_or_load(key, loader)", loads, keys=Keys.FRESH_LOADS, finish=cleanup,
        ),
    ]  # fmt: skip


def _in_table_order(cases: Iterable[Case]) -> dict[str, Case]:
    groups = list(Group)
    ordered = sorted(cases, key=lambda case: groups.index(case.group))  # stable within a group
    return {case.id: case for case in ordered}


# -- measuring ---------------------------------------------------------------------------------


def _uniform_sequence(resident: Sequence[str], length: int) -> list[str]:
    rng = random.Random(0)
    return [resident[rng.randrange(len(resident))] for _ in range(length)]


def _fresh_keys(label: str, count: int) -> list[str]:
    keys = [f"fresh:{label}:{index}" for index in range(count)]
    for key in keys:
        hash(key)  # str caches its hash: computed now, not by whichever cache sees it first
    return keys


async def _time(case: Case, keys: Sequence[str], warm: Sequence[str]) -> Stopwatch:
    """One timing of one case over ``keys``.

    ``warm`` is run first, untimed: the previous implementation has pushed this one's data out
    of the CPU caches, and refilling them (about 1.5 ms for the resident set here) would
    otherwise be charged to the first operations, most heavily to the cheapest rows.
    """
    if case.setup is not None:
        await case.setup()
    with gc_paused():
        if warm:
            await case.loop(warm, case.target, VALUE, load_value)
        with stopwatch() as watch:
            await case.loop(keys, case.target, VALUE, load_value)
    if case.teardown is not None:
        await case.teardown()
    return watch


def _round_keys(label: str, sequence: list[str], ops: int, load_ops: int) -> dict[Keys, list[str]]:
    fresh = _fresh_keys(label, ops)
    return {Keys.RESIDENT: sequence[:ops], Keys.FRESH: fresh, Keys.FRESH_LOADS: fresh[:load_ops]}


async def _play_round(
    cases: list[Case], keys: dict[Keys, list[str]], shift: int, record: bool
) -> None:
    """Time every case once, in an order rotated by ``shift``."""
    gc.collect()  # the previous round's garbage, between timings (none runs inside them)
    shift %= len(cases)
    for case in cases[shift:] + cases[:shift]:
        # Only the resident data can be warmed without changing what is measured: a warm-up
        # insert would be one more insert. Inserts and loads cost microseconds; a cold start
        # is a small share of theirs.
        warmed = case.warm and case.keys is Keys.RESIDENT
        warm = keys[Keys.RESIDENT][:WARM_OPS] if warmed else ()
        watch = await _time(case, keys[case.keys], warm)
        if record:
            case.figures.add(watch, len(keys[case.keys]))


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the benchmark is not measuring what it claims: {what}")


async def _check_state(runtime: Runtime, inserted: int, loaded: int) -> None:
    """After a warm-up round: hits were hits, and every insert evicted one entry."""
    tool, bounded, loads = (runtime.layer(name) for name in ("tool", "bounded", "loads"))
    _expect(tool.stats().misses == 0, "a rgruntime hit missed")
    _expect(tool.stats().entries == RESIDENT_KEYS, "the tool layer lost entries")
    for layer, count in ((bounded, inserted), (loads, loaded)):
        stats = layer.stats()
        _expect(stats.entries == RESIDENT_KEYS, f"{layer.name} is not back at its bound")
        _expect(stats.evictions == count, f"{layer.name} did not evict one per insert")


async def _measure(
    backend: str, plan: Plan, rounds: range, figures: dict[str, Figures]
) -> dict[str, Case]:
    """One block: fresh fixtures, a short untimed warm-up round, then ``rounds``.

    Samples go to ``figures`` (by case id), which outlives the block's fixtures.
    """
    resident = [f"tool:weather:city-{index:05d}" for index in range(RESIDENT_KEYS)]
    sequence = _uniform_sequence(resident, plan.ops)
    warm_ops, warm_loads = plan.ops // WARM_UP_SHARE, plan.load_ops // WARM_UP_SHARE
    async with open_runtime(RUNTIME_CONFIG) as runtime, anyio.create_task_group() as group:
        cases = _peer_cases(resident, group)
        if backend == "asyncio":
            cases += await _cashews_cases(resident)
        cases += await _rgruntime_cases(runtime, resident)
        ordered = _in_table_order(cases)
        for case in cases:
            case.figures = figures.setdefault(case.id, Figures())
        played = list(ordered.values())
        with frozen_heap():
            # The warm-up lets the interpreter specialise each new loop and checks the setup.
            warm_up = _round_keys(f"warm-{rounds.start}", sequence, warm_ops, warm_loads)
            await _play_round(played, warm_up, rounds.start - 1, record=False)
            await _check_state(runtime, warm_ops, warm_loads)
            for number in rounds:
                keys = _round_keys(str(number), sequence, plan.ops, plan.load_ops)
                await _play_round(played, keys, number, record=True)
    return ordered


# -- reporting ---------------------------------------------------------------------------------


def _ns(value: float) -> str:
    return f"{value:,.0f}"


def _times(ratio: float) -> str:
    # Two decimals where one would hide differences the table is read for (0.84 vs 0.89).
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.0f}x"


def _table(backend: str, cases: dict[str, Case], plan: Plan) -> Table:
    baseline = cases["dict.get"].figures.minimum
    table = Table(
        title=f"core hot paths on {backend}: ns per operation",
        caption=(
            f"min and median of {plan.rounds} interleaved rounds of {plan.ops:,} operations "
            f"(miss + load: {plan.load_ops:,}); ratio = min ÷ min of dict.get; every row runs "
            "in the same `for key in keys:` loop, whose overhead is in every figure"
        ),
    )
    table.add_column("implementation")
    table.add_column("operation")
    table.add_column("min ns", justify="right")
    table.add_column("median ns", justify="right")
    table.add_column("÷ dict.get", justify="right")
    previous: Group | None = None
    for case in cases.values():
        if previous is not None and case.group is not previous:
            table.add_section()
        previous = case.group
        figures = case.figures
        ratio = _times(figures.minimum / baseline)
        label = f"{case.group.value}: {case.operation}"
        # Text, not markup: "d[k] = v" must not be read as a style tag.
        table.add_row(
            Text(case.implementation), Text(label), _ns(figures.minimum), _ns(figures.median), ratio
        )
    if backend != "asyncio":
        table.add_section()
        table.add_row("cashews Memory", "all", "n/a", "n/a", "asyncio only")
    return table


@dataclass(frozen=True)
class Check:
    """An acceptance check: ``subject ≤ limit x reference``, on the minima of this run."""

    label: str
    subject: tuple[str, str]  # (backend, case id)
    reference: tuple[str, str]
    limit: float

    def figures(self, results: dict[str, dict[str, Case]]) -> tuple[Figures, Figures]:
        subject = results[self.subject[0]][self.subject[1]].figures
        reference = results[self.reference[0]][self.reference[1]].figures
        return subject, reference


CHECKS: Final = (
    Check(
        "(a) rgruntime await get hit, asyncio ≤ 1.0 x cashews Memory await get, asyncio",
        ("asyncio", "rgruntime.get"),
        ("asyncio", "cashews.get"),
        1.0,
    ),
    Check(
        "(b) rgruntime get_nowait hit ≤ 1.0 x cachetools.LRUCache.get, asyncio run",
        ("asyncio", "rgruntime.get_nowait"),
        ("asyncio", "cachetools.get"),
        1.0,
    ),
    Check(
        "(c) rgruntime await get hit, trio ≤ 1.25 x the same on asyncio",
        ("trio", "rgruntime.get"),
        ("asyncio", "rgruntime.get"),
        1.25,
    ),
)


def _acceptance(results: dict[str, dict[str, Case]]) -> Table:
    table = Table(
        title="acceptance: computed from this run's figures",
        caption="ratio = subject min ÷ reference min (PASS when ≤ limit); medians for the spread",
    )
    for column in ("check", "subject ns", "reference ns", "ratio", "limit", "medians", "verdict"):
        table.add_column(column, justify="left" if column == "check" else "right")
    for check in CHECKS:
        subject, reference = check.figures(results)
        ratio = subject.minimum / reference.minimum
        verdict = Text("PASS", "bold green") if ratio <= check.limit else Text("FAIL", "bold red")
        table.add_row(
            check.label,
            _ns(subject.minimum),
            _ns(reference.minimum),
            f"{ratio:.2f}",
            f"{check.limit:.2f}",
            f"{subject.median / reference.median:.2f}",
            verdict,
        )
    return table


def _noise_note(cases: dict[str, Case]) -> str:
    """How disturbed this backend's run was, in two numbers."""
    figures = [case.figures for case in cases.values()]
    spread = statistics.median(each.median / each.minimum for each in figures)
    wall = sum(each.wall_total for each in figures)
    cpu = sum(each.cpu_total for each in figures)
    return (
        f"clock: this process's CPU time (time given to other work is not counted; the wall "
        f"clock ran {wall / cpu:.2f}x as long). noise: median ÷ min {spread:.2f} on the typical row"
    )


def run(options: RunOptions, console: Console) -> None:
    """Measure both backends, a few rounds at a time, alternating; then report.

    Alternating blocks (rather than all of asyncio, then all of trio) puts both backends
    through the same spells of machine load, which check (c) compares across them.
    """
    plan = Plan.of(options)
    figures: dict[str, dict[str, Figures]] = {backend: {} for backend in BACKENDS}
    results: dict[str, dict[str, Case]] = {}
    blocks = plan.blocks()
    started = time.perf_counter()
    for index, rounds in enumerate(blocks):
        # Alternate which backend goes first, so neither always follows the other.
        for backend in BACKENDS if index % 2 == 0 else BACKENDS[::-1]:
            results[backend] = anyio.run(
                _measure, backend, plan, rounds, figures[backend], backend=backend
            )
        elapsed = time.perf_counter() - started
        stderr_note(f"core: block {index + 1}/{len(blocks)} measured ({elapsed:.0f} s)")
    for backend in BACKENDS:
        console.print()
        console.print(_table(backend, results[backend], plan))
        console.print(_noise_note(results[backend]))
    console.print()
    console.print(_acceptance(results))
