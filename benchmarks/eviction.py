"""Eviction quality and replay speed: our policies beside libCacheSim's, on six public traces.

``python -m benchmarks eviction [--quick]``. For each trace of ``../shared/traces`` (override with
the ``RGRUNTIME_TRACES`` environment variable) and each cache size (0.1%, 1% and 10% of the
trace's unique keys, at least one entry), the run replays the whole trace through:

- every rgruntime strategy (``lru``, ``lfu``, ``ttl``, ``tiered`` with its default tier split,
  ``cost``), built as a layer builds them (``make_policy(strategy, max_entries=size)``) and
  driven through the public interface only: ``record_access`` on a hit; on a miss
  ``record_write`` then, while over the size, ``victim()`` and ``remove()``. Every object has size
  1 (the traces carry no sizes), every deadline is infinite;
- libCacheSim's LRU, ARC, 2Q, S3-FIFO and W-TinyLFU (its C simulator, through its Python
  package, on the same requests written to a binary trace file).

Then it prints the miss ratios side by side, the replay speed of each of our policies, and an
acceptance block computed from these figures.

Speed: each replay is timed by this process's CPU time, with the collector paused. A policy's
*bookkeeping* is everything its four calls cost (``record_access``, ``record_write``, ``victim``,
``remove``: the calls themselves included), per request: the replay's time minus its *floor*'s.
The floor is the same loop over the same requests without the policy: right after a policy's
replay, the loop runs again with the same hits, misses and evictions (the victims the policy
named, logged during its replay and read back in order), so the floor carries exactly the loop's
own work (iterating the trace, the resident-key set, counting misses) and nothing of the policy.
Each policy replays each cell ``--rounds`` times (default 2, 1 with ``--quick``; a fresh policy
each time, the policies taking turns), and the figures keep the fastest replay and, apart, the
fastest floor: the work is the same every round, and on a shared machine noise only adds time.

``--quick`` replays only the first 100,000 requests of each trace (a prefix, not a sample; the
cache sizes follow the prefix's unique keys), and says so above the tables.

While working on a policy, two environment variables run a subset (the report says so, and its
acceptance block then covers only what ran): ``RGRUNTIME_EVICTION_TRACES=orm_busy,loop`` (trace
names as in the tables) and ``RGRUNTIME_EVICTION_STRATEGIES=lfu,tiered`` (ours only; libCacheSim
is then skipped, so the quality checks print n/a).
"""

from __future__ import annotations

import array
import gc
import gzip
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks import RunOptions
from benchmarks._harness import frozen_heap, gc_paused, stderr_note, stopwatch
from benchmarks.phase_shift import WORKLOADS
from rgruntime import open_runtime
from rgruntime.policies import make_policy

__all__ = ["run"]

#: Where the traces are looked for, unless RGRUNTIME_TRACES says otherwise.
DEFAULT_TRACES: Final = Path(__file__).resolve().parent.parent.parent / "shared" / "traces"
TRACES_VARIABLE: Final = "RGRUNTIME_TRACES"
#: Subsets for iterating on a policy (see the module documentation).
ONLY_TRACES_VARIABLE: Final = "RGRUNTIME_EVICTION_TRACES"
ONLY_STRATEGIES_VARIABLE: Final = "RGRUNTIME_EVICTION_STRATEGIES"
#: (short name, file), in the order of shared/ANCHORS.md.
TRACES: Final = (
    ("web12", "cache2k_web12.u64.gz"),
    ("orm_busy", "cache2k_orm_busy.u64.gz"),
    ("scarab_recs", "scarab_recs.u64.gz"),
    ("arc_oltp", "arc_oltp.u64.gz"),
    ("loop", "lirs_loop.u64.gz"),
    ("2_pools", "lirs_2_pools.u64.gz"),
)
TRACE_NAMES: Final = tuple(name for name, _ in TRACES)
SIZES: Final = (0.001, 0.01, 0.1)
#: Replays of each policy per cell (``--rounds``); the speed figures keep the fastest.
DEFAULT_ROUNDS: Final = 2
QUICK_REQUESTS: Final = 100_000

OURS: Final = ("lru", "lfu", "ttl", "tiered", "cost")
#: libCacheSim class name -> column label.
THEIRS: Final = (("LRU", "LRU"), ("ARC", "ARC"), ("TwoQ", "2Q"), ("S3FIFO", "S3-FIFO"),
                 ("WTinyLFU", "W-TinyLFU"))  # fmt: skip
THEIR_LABELS: Final = tuple(label for _, label in THEIRS)
#: Below these sizes libCacheSim 0.3.5 aborts the whole process (its small queue or window
#: would hold no entry): those cells are n/a.
THEIR_MIN_SIZE: Final = {"S3FIFO": 10, "WTinyLFU": 5}

#: Acceptance (issue 6): the traces and sizes where tiered must lead, and the margins; issue 12
#: holds lfu to every trace at the same sizes, and to the phase-shift workloads.
ACCEPTANCE_TRACES: Final = ("web12", "orm_busy", "2_pools", "loop")
LFU_TRACES: Final = TRACE_NAMES
PHASE_SHIFT_MARGIN: Final = 0.5
ACCEPTANCE_SIZES: Final = (0.01, 0.1)
LRU_EXACT: Final = 0.05
LFU_MARGIN: Final = 0.5
#: How much worse a live layer may be than its own replay, in points (issue 12).
LIVE_MARGIN: Final = 0.3
TIERED_MARGIN: Final = 1.0
LRU_MARGIN: Final = 1.0
BOOKKEEPING_LIMIT_US: Final = 1.0


@dataclass
class Trace:
    name: str
    keys: list[int]
    raw: bytes  # the requests as little-endian uint64, for libCacheSim's reader
    unique: int

    def size(self, share: float) -> int:
        return max(1, round(self.unique * share))


@dataclass
class Replay:
    """One policy on one trace at one size."""

    misses: int
    requests: int
    cpu_ns: int  # the replay: the loop and the policy
    floor_ns: int  # the same loop, hits, misses and evictions, without the policy

    @property
    def miss_ratio(self) -> float:
        return 100.0 * self.misses / self.requests


@dataclass
class Results:
    """Miss ratios (%) by (trace, size, column), and our replays for the speed table."""

    ratios: dict[tuple[str, float, str], float] = field(default_factory=dict)
    replays: dict[tuple[str, float, str], Replay] = field(default_factory=dict)
    sizes: dict[tuple[str, float], int] = field(default_factory=dict)
    libcachesim: str | None = None  # why libCacheSim's columns are missing, if they are
    strategies: tuple[str, ...] = OURS  # ours that ran (all but in a subset run)
    rounds: int = 1  # replays of each policy per cell; the speed figures keep the fastest
    #: Miss ratios (%) on the phase-shift workloads, by (workload name, column).
    phase: dict[tuple[str, str], float] = field(default_factory=dict)


# -- loading ----------------------------------------------------------------------------------


def trace_directory() -> Path:
    """The traces' folder; exits with a message naming what to do if it is not there."""
    configured = os.environ.get(TRACES_VARIABLE)
    directory = Path(configured) if configured else DEFAULT_TRACES
    missing = [file for _, file in TRACES if not (directory / file).is_file()]
    if missing:
        raise SystemExit(
            f"eviction benchmark: trace files not found in {directory} "
            f"(missing: {', '.join(missing)}). Point {TRACES_VARIABLE} at the folder that holds "
            "them (shared/traces of the project; see its README.md)."
        )
    return directory


def load(directory: Path, file: str, name: str, limit: int | None) -> Trace:
    raw = gzip.decompress((directory / file).read_bytes())
    if limit is not None:
        raw = raw[: 8 * limit]
    requests = array.array("Q")
    requests.frombytes(raw)
    if sys.byteorder != "little":
        requests.byteswap()
    keys = requests.tolist()
    return Trace(name, keys, raw, len(set(keys)))


# -- our replay -------------------------------------------------------------------------------


def replay(policy: Any, keys: Sequence[int], capacity: int, evictions: list[int]) -> int:
    """Drive ``policy`` as a layer of ``capacity`` unit-size entries would; return the misses.

    The victims go to ``evictions``, in order, for :func:`replay_floor`. Methods and the resident
    set are bound to locals: the loop's own cost is in every figure (the floor measures it), so
    it is kept as small as plain Python allows.
    """
    access, write = policy.record_access, policy.record_write
    victim, remove = policy.victim, policy.remove
    log = evictions.append
    resident: set[int] = set()
    admit, discard = resident.add, resident.discard
    never = math.inf
    misses = 0
    for key in keys:
        if key in resident:
            access(key, never)
        else:
            misses += 1
            write(key, 1, never)
            admit(key)
            while len(resident) > capacity:
                evicted = victim()
                remove(evicted)
                discard(evicted)
                log(evicted)
    return misses


#: How one column of our figures is obtained: (trace's keys, strategy, capacity in entries) to
#: a miss ratio in %. ``replayed`` is the trace replay above; ``live`` drives a live layer
#: through its public API (issue 12).
MissRatio = Callable[[Sequence[int], str, int], float]


def replayed_miss_ratio(keys: Sequence[int], strategy: str, capacity: int) -> float:
    """The miss ratio (%) of ``strategy`` replaying ``keys`` with ``capacity`` unit entries."""
    policy = make_policy(strategy, max_entries=capacity)
    return 100.0 * replay(policy, keys, capacity, []) / len(keys)


def live_miss_ratio(keys: Sequence[int], strategy: str, capacity: int) -> float:
    """The miss ratio (%) of ``strategy`` in a live layer of ``capacity`` entries, driven through
    the public API as a user would (``get_nowait``, then ``set_nowait`` on a miss), on asyncio,
    with a checkpoint every 4,096 requests so that the layer's actor runs as it would in a
    service. The policy learns hits from the layer's access log, not from the benchmark."""
    return anyio.run(_live_misses, keys, strategy, capacity) * 100.0 / len(keys)


async def _live_misses(keys: Sequence[int], strategy: str, capacity: int) -> int:
    config = {"layers": {"trace": {"max_entries": capacity, "strategy": strategy, "ttl": None}}}
    async with open_runtime(config) as runtime:
        layer = runtime.layer("trace")
        get, put = layer.get_nowait, layer.set_nowait
        missing = object()
        misses = 0
        for position, key in enumerate(map(str, keys)):
            if get(key, missing) is missing:
                misses += 1
                put(key, 1, size=1_000)  # unit entries: the layer is bounded by max_entries
            if position % 4096 == 0:
                await anyio.lowlevel.checkpoint()
        return misses


OUR_COLUMNS: Final[dict[str, MissRatio]] = {
    "replayed": replayed_miss_ratio,
    "live": live_miss_ratio,
}


def column_label(strategy: str, column: str) -> str:
    """The table heading of ``strategy`` measured by ``column`` (``replayed``: the bare name)."""
    return strategy if column == "replayed" else f"{strategy} {column}"


def our_labels(strategies: Sequence[str]) -> tuple[str, ...]:
    """Our columns' headings: every strategy replayed, then every other column's, strategy by
    strategy."""
    return tuple(
        column_label(strategy, column) for column in OUR_COLUMNS for strategy in strategies
    )


def measure_other_columns(
    trace: Trace, shares: Sequence[float], strategies: Sequence[str], results: Results
) -> None:
    """Our columns other than ``replayed`` (which :func:`measure_ours` times as well)."""
    for column, miss_ratio in OUR_COLUMNS.items():
        if column == "replayed":
            continue
        for share in shares:
            for strategy in strategies:
                ratio = miss_ratio(trace.keys, strategy, trace.size(share))
                results.ratios[trace.name, share, column_label(strategy, column)] = ratio


def replay_floor(keys: Sequence[int], capacity: int, evictions: list[int]) -> int:
    """:func:`replay` without the policy: the same hits, misses and evictions (``evictions``,
    as logged by the replay), so that its time is the loop's own. Returns the misses.

    Reading a victim back (a C-level ``__next__``) stands for logging it (a C-level
    ``append``) in the replay: each side has one such call per eviction.
    """
    evicted_next = iter(evictions).__next__
    resident: set[int] = set()
    admit, discard = resident.add, resident.discard
    misses = 0
    for key in keys:
        if key in resident:
            pass
        else:
            misses += 1
            admit(key)
            while len(resident) > capacity:
                discard(evicted_next())
    return misses


def _timed(run: Callable[[], int]) -> tuple[int, int]:
    """(what ``run`` returns, its CPU time in ns), collected before and paused while it runs."""
    gc.collect()
    with gc_paused(), stopwatch() as watch:
        outcome = run()
    return outcome, watch.cpu_ns


def measure_ours(
    trace: Trace, share: float, strategies: Sequence[str], rounds: int, results: Results
) -> None:
    """Replay ``trace`` through each strategy ``rounds`` times (a fresh policy each time, the
    strategies taking turns), keeping the least disturbed time of the replays and, apart, of the
    floors: the work is the same every round, and on a shared machine noise only adds time."""
    capacity = trace.size(share)
    results.sizes[trace.name, share] = capacity
    keys = trace.keys
    for _ in range(rounds):
        for strategy in strategies:
            policy = make_policy(strategy, max_entries=capacity)
            evictions: list[int] = []
            misses, cpu_ns = _timed(partial(replay, policy, keys, capacity, evictions))
            # Straight after, so that both run in the same conditions of a shared machine.
            floor_misses, floor_ns = _timed(partial(replay_floor, keys, capacity, evictions))
            if floor_misses != misses:  # cannot happen: the floor follows the replay's victims
                raise AssertionError(f"floor replay diverged: {floor_misses} vs {misses} misses")
            earlier = results.replays.get((trace.name, share, strategy))
            if earlier is not None:
                if earlier.misses != misses:  # cannot happen: the policies are deterministic
                    raise AssertionError(f"{strategy} replayed differently: {misses} misses")
                cpu_ns, floor_ns = min(cpu_ns, earlier.cpu_ns), min(floor_ns, earlier.floor_ns)
            outcome = Replay(misses, len(keys), cpu_ns, floor_ns)
            results.replays[trace.name, share, strategy] = outcome
            results.ratios[trace.name, share, strategy] = outcome.miss_ratio


# -- libCacheSim ------------------------------------------------------------------------------


def _libcachesim() -> Any:
    try:
        import libcachesim  # type: ignore[import-untyped]
    except ImportError:
        return None
    return libcachesim


def theirs_at(libcachesim: Any, path: Path, capacity: int) -> dict[str, float]:
    """libCacheSim's miss ratios (%) by column label on the binary trace at ``path``."""
    # The format string goes through the constructor: libcachesim 0.3.5 keeps a dangling
    # pointer when it is assigned to the attribute afterwards.
    parameters = libcachesim.ReaderInitParam(binary_fmt_str="<Q", ignore_obj_size=True)
    parameters.obj_id_field = 1
    ratios: dict[str, float] = {}
    for class_name, label in THEIRS:
        if capacity < THEIR_MIN_SIZE.get(class_name, 1):
            continue
        reader = libcachesim.TraceReader(str(path), libcachesim.TraceType.BIN_TRACE, parameters)
        miss_ratio, _ = getattr(libcachesim, class_name)(capacity).process_trace(reader)
        ratios[label] = 100.0 * miss_ratio
    return ratios


def measure_theirs(
    libcachesim: Any, trace: Trace, scratch: Path, shares: Sequence[float], results: Results
) -> None:
    path = scratch / f"{trace.name}.bin"
    path.write_bytes(trace.raw)
    for share in shares:
        for label, ratio in theirs_at(libcachesim, path, trace.size(share)).items():
            results.ratios[trace.name, share, label] = ratio


def measure_phase_shift(
    libcachesim: Any, scratch: Path, strategies: Sequence[str], results: Results
) -> None:
    """Every phase-shift workload through our strategies (replayed) and libCacheSim's."""
    for workload in WORKLOADS:
        keys = workload.make()
        for column, miss_ratio in OUR_COLUMNS.items():
            for strategy in strategies:
                ratio = miss_ratio(keys, strategy, workload.capacity)
                results.phase[workload.name, column_label(strategy, column)] = ratio
        if libcachesim is not None:
            path = scratch / "phase-shift.bin"
            requests = array.array("Q", keys)
            if sys.byteorder != "little":
                requests.byteswap()
            path.write_bytes(requests.tobytes())
            for label, ratio in theirs_at(libcachesim, path, workload.capacity).items():
                results.phase[workload.name, label] = ratio


# -- reporting --------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ratio_table(
    title: str,
    caption: str,
    first: str,
    columns: Sequence[str],
    rows: Sequence[tuple[str, int, Sequence[float | None]]],
) -> Table:
    """Miss ratios, one row per (name, entries, figures by column), the best of each in bold."""
    table = Table(title=title, caption=caption)
    table.add_column(first)
    table.add_column("entries", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for name, entries, figures in rows:
        known = [value for value in figures if value is not None]
        best = min(known) if known else None
        cells = [Text(_percent(v), "bold" if v is not None and v == best else "") for v in figures]
        table.add_row(name, f"{entries:,}", *cells)
    return table


def _quality_table(results: Results, share: float, traces: Sequence[str]) -> Table:
    columns = (*our_labels(results.strategies), *THEIR_LABELS)
    return _ratio_table(
        f"miss ratio %, cache = {share:.1%} of each trace's unique keys (lower is better)",
        "left: rgruntime's strategies (tiered: default tier split hot/warm/cold 10:50:200); "
        "right: libCacheSim's (n/a: libCacheSim aborts at this size). Bold: the best of each row.",
        "trace",
        columns,
        [
            (
                trace,
                results.sizes[trace, share],
                [results.ratios.get((trace, share, column)) for column in columns],
            )
            for trace in traces
        ],
    )


def _per_request_us(replays: Sequence[Replay]) -> tuple[float, float]:
    """(replay, floor) µs per request over ``replays``."""
    requests = sum(each.requests for each in replays)
    return (
        sum(each.cpu_ns for each in replays) / requests / 1000,
        sum(each.floor_ns for each in replays) / requests / 1000,
    )


def bookkeeping_us(results: Results, strategy: str, keys: Sequence[tuple[str, float]]) -> float:
    """µs per request above the floor, over the given (trace, size) replays."""
    total_us, floor_us = _per_request_us(
        [results.replays[trace, share, strategy] for trace, share in keys]
    )
    return total_us - floor_us


def _speed_table(results: Results, traces: Sequence[str], shares: Sequence[float]) -> Table:
    everything = [(trace, share) for trace in traces for share in shares]
    requests = sum(results.replays[(*key, results.strategies[0])].requests for key in everything)
    table = Table(
        title=(
            f"replay speed of rgruntime's policies: {requests:,} requests each "
            "(every trace at every size; CPU time, collector paused; fastest of "
            f"{results.rounds} round{'s' if results.rounds > 1 else ''})"
        ),
        caption=(
            "total = the replay loop and the policy; floor = the same loop with the same hits, "
            "misses and evictions, without the policy; bookkeeping = total - floor: the "
            "policy's four calls, the calls included"
        ),
    )
    columns = ("policy", "requests/s", "total µs/request", "floor µs/request",
               "bookkeeping µs/request")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "policy" else "right")
    for strategy in results.strategies:
        total_us, floor_us = _per_request_us(
            [results.replays[(*key, strategy)] for key in everything]
        )
        table.add_row(
            strategy,
            f"{1e6 / total_us:,.0f}",
            f"{total_us:.3f}",
            f"{floor_us:.3f}",
            f"{total_us - floor_us:.3f}",
        )
    return table


def _speed_by_trace(results: Results, traces: Sequence[str], shares: Sequence[float]) -> Table:
    table = Table(
        title="bookkeeping µs/request by trace (all sizes)",
        caption="misses cost more than hits: the traces with high miss ratios are the slow ones",
    )
    table.add_column("policy")
    for trace in traces:
        table.add_column(trace, justify="right")
    for strategy in results.strategies:
        table.add_row(
            strategy,
            *(
                f"{bookkeeping_us(results, strategy, [(trace, s) for s in shares]):.2f}"
                for trace in traces
            ),
        )
    return table


def _phase_table(results: Results, strategies: Sequence[str]) -> Table:
    columns = (*our_labels(strategies), *THEIR_LABELS)
    return _ratio_table(
        "miss ratio %, phase-shift workloads (benchmarks/phase_shift.py; lower is better)",
        "the popular set changes abruptly; held-out workloads were not looked at while tuning. "
        "Ours replayed; libCacheSim's in the same run. Bold: the best of each row.",
        "workload",
        columns,
        [
            (
                workload.name,
                workload.capacity,
                [results.phase.get((workload.name, column)) for column in columns],
            )
            for workload in WORKLOADS
        ],
    )


@dataclass(frozen=True)
class Verdict:
    label: str
    passed: bool | None  # None: could not be computed (libCacheSim missing)
    detail: str


def _best_of_theirs(results: Results, trace: str, share: float) -> tuple[float, str] | None:
    figures = [
        (results.ratios[trace, share, label], label)
        for label in THEIR_LABELS
        if (trace, share, label) in results.ratios
    ]
    return min(figures) if len(figures) == len(THEIR_LABELS) else None


def _within_best(results: Results, strategy: str, margin: float, traces: Sequence[str]) -> Verdict:
    worst: tuple[float, str] | None = None
    for trace in traces:
        for share in ACCEPTANCE_SIZES:
            best = _best_of_theirs(results, trace, share)
            if best is None:
                return Verdict("", None, "libCacheSim figures missing")
            mine = results.ratios[trace, share, strategy]
            gap = mine - best[0]
            cell = f"{trace} {share:.0%}: {mine:.2f} vs {best[1]} {best[0]:.2f}"
            if worst is None or gap > worst[0]:
                worst = (gap, cell)
    if worst is None:
        return Verdict("", None, "none of the acceptance traces in this run")
    return Verdict("", worst[0] <= margin, f"worst gap {worst[0]:+.2f} ({worst[1]})")


def _versus_lru(
    results: Results, strategy: str, traces: Sequence[str], margin: float = LRU_MARGIN
) -> Verdict:
    worst: tuple[float, str] | None = None
    for trace in traces:
        for share in ACCEPTANCE_SIZES:
            lru = results.ratios.get((trace, share, "LRU"))
            if lru is None:
                return Verdict("", None, "libCacheSim figures missing")
            gap = results.ratios[trace, share, strategy] - lru
            if worst is None or gap > worst[0]:
                worst = (gap, f"{trace} {share:.0%}")
    if worst is None:
        return Verdict("", None, "none of the acceptance traces in this run")
    return Verdict("", worst[0] <= margin, f"worst {worst[0]:+.2f} vs LRU ({worst[1]})")


def _phase_versus_lru(results: Results, strategy: str, held_out: bool) -> Verdict:
    worst: tuple[float, str] | None = None
    for workload in WORKLOADS:
        if workload.held_out != held_out:
            continue
        lru = results.phase.get((workload.name, "LRU"))
        mine = results.phase.get((workload.name, strategy))
        if lru is None or mine is None:
            return Verdict("", None, "libCacheSim figures missing")
        if worst is None or mine - lru > worst[0]:
            worst = (mine - lru, f"{workload.name}: {mine:.2f} vs {lru:.2f}")
    if worst is None:
        return Verdict("", None, "no such workload")
    return Verdict("", worst[0] <= PHASE_SHIFT_MARGIN, f"worst {worst[0]:+.2f} ({worst[1]})")


def _lru_exact(results: Results, traces: Sequence[str], shares: Sequence[float]) -> Verdict:
    worst: tuple[float, str] | None = None
    for trace in traces:
        for share in shares:
            theirs = results.ratios.get((trace, share, "LRU"))
            if theirs is None:
                return Verdict("", None, "libCacheSim figures missing")
            gap = abs(results.ratios[trace, share, "lru"] - theirs)
            if worst is None or gap > worst[0]:
                worst = (gap, f"{trace} {share:.1%}")
    assert worst is not None
    return Verdict("", worst[0] <= LRU_EXACT, f"largest |difference| {worst[0]:.3f} ({worst[1]})")


def verdicts(results: Results, traces: Sequence[str], shares: Sequence[float]) -> list[Verdict]:
    accepted = [trace for trace in ACCEPTANCE_TRACES if trace in traces]
    ran = set(results.strategies)
    lfu_traces = [trace for trace in LFU_TRACES if trace in traces]
    checks = [
        ("lru", f"lru within {LRU_EXACT} points of libCacheSim's LRU, every cell",
         _lru_exact(results, traces, shares)),
        ("lfu", f"lfu replayed: <= best of the five + {LFU_MARGIN}, {len(lfu_traces)} traces "
         "at 1% and 10%", _within_best(results, "lfu", LFU_MARGIN, lfu_traces)),
        ("lfu", "lfu replayed: <= LRU in every one of those cells",
         _versus_lru(results, "lfu", lfu_traces, 0.0)),
        ("lfu", f"lfu on the phase-shift workloads: <= LRU + {PHASE_SHIFT_MARGIN} (tuning)",
         _phase_versus_lru(results, "lfu", held_out=False)),
        ("lfu", f"lfu on the phase-shift workloads: <= LRU + {PHASE_SHIFT_MARGIN} (held out)",
         _phase_versus_lru(results, "lfu", held_out=True)),
        ("tiered", f"tiered (default split) within {TIERED_MARGIN} of the best, "
         f"{'/'.join(accepted)} at 1% and 10% (issue 6)",
         _within_best(results, "tiered", TIERED_MARGIN, accepted)),
        ("tiered", "tiered never more than 1 point worse than LRU (same cells)",
         _versus_lru(results, "tiered", accepted)),
    ]  # fmt: skip
    found = [
        Verdict(label, verdict.passed, verdict.detail)
        for strategy, label, verdict in checks
        if strategy in ran
    ]
    found.append(_live_versus_replayed(results, traces, [s for s in shares if s >= 0.01]))
    everything = [(trace, share) for trace in traces for share in shares]
    for strategy in results.strategies:
        cost = bookkeeping_us(results, strategy, everything)
        worst_trace = max(
            traces,
            key=lambda trace: bookkeeping_us(results, strategy, [(trace, s) for s in shares]),
        )
        worst = bookkeeping_us(results, strategy, [(worst_trace, s) for s in shares])
        found.append(
            Verdict(
                f"{strategy}: bookkeeping ≤ {BOOKKEEPING_LIMIT_US:g} µs/request, replay average",
                cost <= BOOKKEEPING_LIMIT_US,
                f"{cost:.3f} µs (slowest trace: {worst_trace} {worst:.2f} µs)",
            )
        )
    return found


def _live_versus_replayed(
    results: Results, traces: Sequence[str], shares: Sequence[float]
) -> Verdict:
    """Every strategy live within :data:`LIVE_MARGIN` points of its replay (or better)."""
    label = f"live within {LIVE_MARGIN} points of replayed (or better), every strategy, 1% and 10%"
    gaps = [
        (
            results.ratios[(*cell, f"{strategy} live")] - results.ratios[(*cell, strategy)],
            cell,
            strategy,
        )
        for strategy in results.strategies
        for cell in ((trace, share) for trace in traces for share in shares)
        if (*cell, f"{strategy} live") in results.ratios and (*cell, strategy) in results.ratios
    ]
    if not gaps:
        return Verdict(label, None, "no live column measured")
    gap, (trace, share), strategy = max(gaps)
    detail = f"worst {gap:+.2f} ({strategy}, {trace} {share:.0%}), {len(gaps)} cells"
    return Verdict(label, gap <= LIVE_MARGIN, detail)


def _acceptance_table(found: Sequence[Verdict]) -> Table:
    table = Table(title="acceptance (issues 6 and 12), computed from this run's figures")
    table.add_column("check")
    table.add_column("figures")
    table.add_column("verdict", justify="right")
    for verdict in found:
        if verdict.passed is None:
            mark = Text("n/a", "yellow")
        else:
            mark = Text("PASS", "bold green") if verdict.passed else Text("FAIL", "bold red")
        table.add_row(verdict.label, verdict.detail, mark)
    return table


# -- the suite ----------------------------------------------------------------------------------


def _subset(variable: str, known: Sequence[str]) -> tuple[str, ...]:
    """The names listed in ``variable`` (comma-separated), in ``known``'s order; all if unset."""
    listed = [name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()]
    unknown = [name for name in listed if name not in known]
    if unknown:
        raise SystemExit(
            f"eviction benchmark: {variable}: unknown {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )
    return tuple(name for name in known if name in listed) if listed else tuple(known)


def _each_trace(directory: Path, names: Sequence[str], limit: int | None) -> Iterator[Trace]:
    for name, file in TRACES:
        if name not in names:
            continue
        started = time.perf_counter()
        trace = load(directory, file, name, limit)
        stderr_note(
            f"eviction: {name}: {len(trace.keys):,} requests, {trace.unique:,} unique keys "
            f"(loaded in {time.perf_counter() - started:.1f} s)"
        )
        yield trace


def measure(
    directory: Path,
    limit: int | None,
    note: Callable[[str], None],
    traces: Sequence[str] = TRACE_NAMES,
    strategies: Sequence[str] = OURS,
    rounds: int = 1,
    phase_shift: bool = True,
) -> Results:
    """Replay ``traces`` through ``strategies``, and through libCacheSim's policies unless only
    some of ours run (a subset for speed work)."""
    results = Results(strategies=tuple(strategies), rounds=rounds)
    libcachesim = _libcachesim() if tuple(strategies) == OURS else None
    if libcachesim is None:
        results.libcachesim = (
            "libcachesim is not installed (pip install 'rgruntime[bench]')"
            if tuple(strategies) == OURS
            else f"{ONLY_STRATEGIES_VARIABLE} is set: libCacheSim skipped"
        )
    with tempfile.TemporaryDirectory(prefix="rgruntime-eviction-") as scratch:
        for trace in _each_trace(directory, traces, limit):
            started = time.perf_counter()
            with frozen_heap():  # the key list lives for the whole trace: keep gc off it
                for share in SIZES:
                    measure_ours(trace, share, strategies, rounds, results)
                measure_other_columns(trace, SIZES, strategies, results)
            if libcachesim is not None:
                measure_theirs(libcachesim, trace, Path(scratch), SIZES, results)
            note(f"eviction: {trace.name} replayed ({time.perf_counter() - started:.0f} s)")
        if phase_shift:
            started = time.perf_counter()
            measure_phase_shift(libcachesim, Path(scratch), strategies, results)
            note(f"eviction: phase-shift workloads ({time.perf_counter() - started:.0f} s)")
    return results


def run(options: RunOptions, console: Console) -> None:
    directory = trace_directory()
    limit = QUICK_REQUESTS if options.quick else None
    traces = _subset(ONLY_TRACES_VARIABLE, TRACE_NAMES)
    strategies = _subset(ONLY_STRATEGIES_VARIABLE, OURS)
    rounds = options.rounds or (1 if options.quick else DEFAULT_ROUNDS)
    # The phase-shift workloads are whole: --quick leaves them out.
    results = measure(
        directory, limit, stderr_note, traces, strategies, rounds, phase_shift=limit is None
    )
    console.print()
    if limit is not None:
        console.print(
            f"[bold yellow]--quick: only the first {limit:,} requests of each trace "
            "(a prefix, not a sample); sizes follow the prefix's unique keys. Figures are not "
            "comparable with shared/ANCHORS.md.[/]"
        )
    if len(traces) < len(TRACES) or strategies != OURS:
        console.print(
            f"[bold yellow]subset: traces {', '.join(traces)}; strategies "
            f"{', '.join(strategies)} ({ONLY_TRACES_VARIABLE}, {ONLY_STRATEGIES_VARIABLE}). "
            "The acceptance block covers only these: not the acceptance run.[/]"
        )
    if results.libcachesim:
        console.print(f"[yellow]{results.libcachesim}: its columns are n/a.[/]")
    for share in SIZES:
        console.print()
        console.print(_quality_table(results, share, traces))
    if results.phase:
        console.print()
        console.print(_phase_table(results, strategies))
    console.print()
    console.print(_speed_table(results, traces, SIZES))
    console.print()
    console.print(_speed_by_trace(results, traces, SIZES))
    console.print()
    console.print(_acceptance_table(verdicts(results, traces, SIZES)))
