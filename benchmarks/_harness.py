"""Measurement helpers shared by the suites: the console, the environment line, figures."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata

from rich.console import Console

__all__ = [
    "Figures",
    "Stopwatch",
    "environment_line",
    "frozen_heap",
    "gc_paused",
    "make_console",
    "stderr_note",
    "stopwatch",
]

# Piped output (nox, CI logs, `| tee`) gets rich's default of 80 columns, which wraps the tables.
_PIPED_WIDTH = 200


def make_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPED_WIDTH
    return console


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_line(packages: Iterable[str]) -> str:
    """Python, the packages measured, and the CPUs this process may actually run on."""
    parts = [f"python {platform.python_version()}", f"rgruntime {_version('rgruntime')}"]
    parts += [f"{name} {_version(name)}" for name in dict.fromkeys(packages)]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts.append(f"CPUs {os.cpu_count()} (usable {usable})")
    parts.append(f"{platform.system()} {platform.machine()}")
    return " · ".join(parts)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector out of a timed section.

    A collection triggered inside a timed loop would be charged to whichever implementation
    happened to allocate at that moment. Callers collect between their timings instead.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Move everything allocated so far out of the collector's sight until the block ends.

    The fixtures (hundreds of thousands of objects) live for the whole run: without this, every
    collection between timings would walk them all again (about 65 ms each here).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class Stopwatch:
    """Both clocks over one timed section (filled in when the section ends)."""

    cpu_ns: int = 0
    wall_ns: int = 0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time a section by this process's CPU time, and by the wall clock for comparison.

    Figures use CPU time: on a shared machine the scheduler hands our core to other work for
    milliseconds at a time, which the wall clock would charge to whatever was running (the
    longest sections most). Every operation measured here runs on the event loop's one thread
    and never waits for I/O, so its CPU time is its whole cost.
    """
    watch = Stopwatch()
    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    try:
        yield watch
    finally:
        watch.wall_ns = time.perf_counter_ns() - wall
        watch.cpu_ns = time.process_time_ns() - cpu


@dataclass
class Figures:
    """The ns/op of one implementation, one sample per round: CPU time, and wall time beside."""

    samples: list[float] = field(default_factory=list)
    wall_samples: list[float] = field(default_factory=list)
    #: Totals over all rounds, in ns.
    cpu_total: int = 0
    wall_total: int = 0

    def add(self, watch: Stopwatch, operations: int) -> None:
        self.samples.append(watch.cpu_ns / operations)
        self.wall_samples.append(watch.wall_ns / operations)
        self.cpu_total += watch.cpu_ns
        self.wall_total += watch.wall_ns

    @property
    def minimum(self) -> float:
        # The least disturbed round: on a shared machine, noise only ever adds time.
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def stderr_note(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)
