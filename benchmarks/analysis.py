"""``python -m benchmarks analysis``: sampled miss-ratio curves against libCacheSim's exact LRU.

For each of the six shared traces, the first :data:`PREFIX_REQUESTS` requests (all of a shorter
trace: a prefix keeps the trace's reuse structure, where a random sample of requests would not)
are fed to :class:`rgruntime.observe.ReuseSampler`; its LRU miss-ratio curve at 10 sizes (from
0.1% to 50% of the prefix's unique keys, geometric) is compared with libCacheSim's LRU replayed
at each size. Prints the mean absolute error per trace (points of miss ratio) and the sampler's
memory bound. The prefix keeps the exact replays (10 sizes x 6 traces) to about a minute.
"""

from __future__ import annotations

import array
import gzip
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from benchmarks import RunOptions
from benchmarks.eviction import TRACES, trace_directory
from rgruntime.observe.recommend import recommended_size
from rgruntime.observe.shards import MAX_SAMPLED_KEYS, ReuseSampler, sizes_between

__all__ = ["TraceCurves", "exact_lru_miss_ratio", "measure", "run"]

#: Requests of each trace used (a prefix): the whole trace in a full run (the test suite uses the
#: first 400,000 to stay quick), 100,000 in a quick one.
PREFIX_REQUESTS: Final = 10**9
QUICK_PREFIX: Final = 100_000
#: Sizes per curve, and their span as shares of the unique keys.
SIZE_COUNT: Final = 10
SMALLEST_SHARE: Final = 0.001
LARGEST_SHARE: Final = 0.5


@dataclass
class TraceCurves:
    name: str
    requests: int
    unique: int
    sizes: Sequence[int]
    predicted: Sequence[float]  # miss ratios, 0-1
    exact: Sequence[float]
    sampling_rate: float
    seconds: float  # feeding the sampler
    # A size recommended for a target hit rate, and the hit rate an exact replay reaches there.
    target_hit_rate: float
    recommended: int | None
    replayed_hit_rate: float | None

    @property
    def mean_absolute_error(self) -> float:
        """Points (percent) of miss ratio."""
        pairs = zip(self.predicted, self.exact, strict=True)
        return 100.0 * sum(abs(p - e) for p, e in pairs) / len(self.sizes)


def read_prefix(file: str, limit: int) -> bytes:
    raw = gzip.decompress((trace_directory() / file).read_bytes())
    return raw[: 8 * limit]


def keys_of(raw: bytes) -> list[int]:
    requests = array.array("Q")
    requests.frombytes(raw)
    if sys.byteorder != "little":
        requests.byteswap()
    return requests.tolist()


def exact_lru_miss_ratio(libcachesim: Any, path: Path, size: int) -> float:
    """libCacheSim's LRU of ``size`` unit objects over the binary trace at ``path`` (0-1)."""
    # The format string goes through the constructor (see benchmarks.eviction).
    parameters = libcachesim.ReaderInitParam(binary_fmt_str="<Q", ignore_obj_size=True)
    parameters.obj_id_field = 1
    reader = libcachesim.TraceReader(str(path), libcachesim.TraceType.BIN_TRACE, parameters)
    miss_ratio, _ = libcachesim.LRU(size).process_trace(reader)
    return float(miss_ratio)


def measure(name: str, file: str, limit: int, scratch: Path) -> TraceCurves:
    import libcachesim  # type: ignore[import-untyped]

    raw = read_prefix(file, limit)
    keys = keys_of(raw)
    unique = len(set(keys))
    sizes = sizes_between(round(unique * SMALLEST_SHARE), round(unique * LARGEST_SHARE), SIZE_COUNT)
    sampler = ReuseSampler()
    started = time.perf_counter()
    access = sampler.access
    for key in keys:
        access(str(key))
    seconds = time.perf_counter() - started
    curve = sampler.curve(sizes)
    path = scratch / f"{name}.bin"
    path.write_bytes(raw)
    exact = [exact_lru_miss_ratio(libcachesim, path, size) for size in sizes]
    # A target between the curve's ends: the hit rate halfway from the smallest to the largest.
    high, low = 1.0 - exact[-1], 1.0 - exact[0]
    target = 100.0 * (low + (high - low) / 2)
    recommended = recommended_size(sampler.curve(sizes_between(1, unique, 64)), target)
    replayed = (
        None
        if recommended is None
        else 100.0 * (1.0 - exact_lru_miss_ratio(libcachesim, path, recommended))
    )
    return TraceCurves(
        name=name,
        requests=len(keys),
        unique=unique,
        sizes=curve.sizes,
        predicted=curve.miss_ratios,
        exact=exact,
        sampling_rate=curve.sampling_rate,
        seconds=seconds,
        target_hit_rate=target,
        recommended=recommended,
        replayed_hit_rate=replayed,
    )


def run(options: RunOptions, console: Console) -> None:
    limit = QUICK_PREFIX if options.quick else PREFIX_REQUESTS
    table = Table(
        title=f"LRU miss-ratio curves: sampled (SHARDS, {MAX_SAMPLED_KEYS} keys) vs exact"
    )
    for column in (
        "trace",
        "requests",
        "unique",
        "rate",
        "MAE (points)",
        "max error",
        "target hit %",
        "recommended",
        "replayed hit %",
        "µs/request",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as scratch:
        for name, file in TRACES:
            result = measure(name, file, limit, Path(scratch))
            worst = max(abs(p - e) for p, e in zip(result.predicted, result.exact, strict=True))
            table.add_row(
                name,
                f"{result.requests:,}",
                f"{result.unique:,}",
                f"{result.sampling_rate:.4f}",
                f"{result.mean_absolute_error:.3f}",
                f"{100 * worst:.3f}",
                f"{result.target_hit_rate:.1f}",
                str(result.recommended),
                "n/a" if result.replayed_hit_rate is None else f"{result.replayed_hit_rate:.1f}",
                f"{1e6 * result.seconds / result.requests:.2f}",
            )
    console.print(table)
