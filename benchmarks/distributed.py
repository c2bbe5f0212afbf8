"""Layers on a shared Redis server: throughput, near-cache hits, and coherence across processes.

A real redis-server on loopback, started for the run (tests/servers.py). On asyncio and on trio:

- **(a) throughput, near cache off**: 100 concurrent tasks, each doing a fixed mix of 80 % GET and
  20 % SET over 1,000 keys, through a layer with ``near_cache: False`` (``await layer.get`` /
  ``await layer.set``: every call reaches the server), beside the raw valkey-glide client doing
  the same GET/SET of the same bytes (the envelope the layer stored, read back from the server).
  Operations per second, best of interleaved rounds. Acceptance: layer ≥ 0.8 x raw.
- **(b) near-cache hit**: ``await layer.get(key)`` and ``layer.get_nowait(key)`` on a warm Redis
  layer (near cache on) beside the same hit on an in-process layer (no ``cache_backend``). CPU
  ns per hit, least disturbed of interleaved rounds. Acceptance: Redis ≤ 1.5 x in-process.
- **(c) coherence, two OS processes**: this process (A) and a child (B, benchmarks/
  _coherence_peer.py) each open a runtime on the same server. Per trial, B writes a fresh key
  (so B holds it near) and then polls it with ``get_nowait`` in a tight loop (``anyio.sleep(0)``
  between polls); A waits a random 0-50 ms (so that B's subscription has gone quiet, as between
  real requests), then invalidates the key (by key, by delete, by overwrite or by tag, in turn)
  and notes when that call returned. B notes the first poll that no longer serves the old value.
  Latency = B's time - A's return time, on the machine's shared monotonic clock (Linux
  CLOCK_MONOTONIC is system-wide). Acceptance: p99 < 50 ms over the trials.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks import RunOptions
from benchmarks._harness import frozen_heap, stderr_note, stopwatch

BACKENDS: Final = ("asyncio", "trio")
#: Where ``python -m benchmarks._coherence_peer`` runs from (the repository).
_ROOT: Final = Path(__file__).resolve().parent.parent
TASKS: Final = 100
KEYS: Final = [f"dist:{i}" for i in range(1000)]
VALUE: Final = b"v" * 200
GET_SHARE: Final = 0.8
#: Layer names in every runtime of this suite: ``remote`` reaches the server on every call,
#: ``near`` keeps its near cache (the default).
REMOTE_LAYER: Final = "remote"
NEAR_LAYER: Final = "near"
#: Longest a trial of (c) waits for B before counting it as never coherent.
COHERENCE_TIMEOUT: Final = 2.0
PAUSE_MAX: Final = 0.05
#: The ways A makes B's copy stale, one per trial in turn.
CHANGES: Final = ("invalidate key", "delete", "overwrite", "invalidate tag")
#: Protocol lines of the peer start with this; anything else it prints (a client library's log)
#: is passed over.
MARK: Final = "@@"

THROUGHPUT_LIMIT: Final = 0.8
HIT_LIMIT: Final = 1.5
COHERENCE_LIMIT_MS: Final = 50.0


@dataclass(frozen=True)
class Plan:
    rounds: int
    per_task: int
    hits: int
    trials: int

    @classmethod
    def of(cls, options: RunOptions) -> Plan:
        if options.quick:
            return cls(rounds=options.rounds or 2, per_task=50, hits=20_000, trials=100)
        return cls(rounds=options.rounds or 5, per_task=200, hits=100_000, trials=1000)


def runtime_config(url: str, prefix: str) -> dict[str, Any]:
    """The configuration of every Redis-backed runtime of this suite (A's and B's)."""
    return {
        "cache_backend": {"type": "redis", "url": url, "prefix": prefix},
        "layers": {REMOTE_LAYER: {"near_cache": False}, NEAR_LAYER: {}},
    }


def _operations(seed: int, count: int) -> list[tuple[bool, str]]:
    """One task's fixed mix: (is a GET, key), GET_SHARE of them GETs."""
    rng = random.Random(seed)
    return [(rng.random() < GET_SHARE, rng.choice(KEYS)) for _ in range(count)]


# -- (a) throughput ------------------------------------------------------------------------------

Get = Callable[[str], Awaitable[Any]]
Set = Callable[[str], Awaitable[Any]]


async def _mixed(get: Get, set_: Set, plans: list[list[tuple[bool, str]]]) -> float:
    """Operations per second of TASKS tasks playing ``plans`` (one per task)."""

    async def worker(plan: list[tuple[bool, str]]) -> None:
        for is_get, key in plan:
            if is_get:
                await get(key)
            else:
                await set_(key)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for plan in plans:
            group.start_soon(worker, plan)
    return sum(map(len, plans)) / (time.perf_counter() - started)


async def _raw_glide(port: int) -> Any:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress

    return await GlideClient.create(GlideClientConfiguration([NodeAddress("127.0.0.1", port)]))


async def _stored_envelope(client: Any, prefix: str) -> bytes:
    """The bytes a layer stored for one of KEYS: what the raw client writes and reads."""
    from glide import ObjectType

    cursor: Any = "0"
    while True:
        cursor, names = await client.scan(
            cursor, match=f"{prefix}*", count=1000, type=ObjectType.STRING
        )
        for name in names:
            value = await client.get(name)
            if isinstance(value, bytes) and VALUE in value:
                return value
        if cursor in (b"0", "0"):
            raise RuntimeError(f"no entry holding the benchmark's value under {prefix!r}")


@dataclass
class Throughput:
    layer: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    #: The same mix on the layer's store directly: get, and set + publish_invalidation (what a
    #: layer write must do), envelopes encoded beforehand: the floor the store protocol sets.
    store: list[float] = field(default_factory=list)


async def _throughput(url: str, port: int, plan: Plan) -> Throughput:
    from rgruntime import open_runtime
    from rgruntime.stores import make_store

    plans = [_operations(seed, plan.per_task) for seed in range(TASKS)]
    prefix = f"tp{random.randrange(1 << 30)}:"
    figures = Throughput()
    client = await _raw_glide(port)
    try:
        async with open_runtime(runtime_config(url, prefix)) as runtime:
            layer = runtime.layer(REMOTE_LAYER)
            for key in KEYS:
                await layer.set(key, VALUE)
            envelope = await _stored_envelope(client, prefix)
            raw_names = {key: f"raw:{key}" for key in KEYS}
            for name in raw_names.values():
                await client.set(name, envelope)

            async def layer_set(key: str) -> None:
                await layer.set(key, VALUE)

            async def raw_get(key: str) -> Any:
                return await client.get(raw_names[key])

            async def raw_set(key: str) -> Any:
                return await client.set(raw_names[key], envelope)

            async with make_store({"type": "redis", "url": url, "prefix": f"s{prefix}"}) as store:
                store_names = {key: f"store:{key}" for key in KEYS}
                for name in store_names.values():
                    await store.set(name, envelope)

                async def store_get(key: str) -> Any:
                    return await store.get(store_names[key])

                async def store_set(key: str) -> None:
                    name = store_names[key]
                    await store.set(name, envelope)
                    await store.publish_invalidation(keys=[name])

                contenders = [
                    (figures.layer, layer.get, layer_set),
                    (figures.raw, raw_get, raw_set),
                    (figures.store, store_get, store_set),
                ]
                for _, get, set_ in contenders:
                    await _mixed(get, set_, plans)  # warm-up
                for round_number in range(plan.rounds):
                    # Rotate who goes first, so that slow spells of the machine hit all of them.
                    shift = round_number % len(contenders)
                    for samples, get, set_ in contenders[shift:] + contenders[:shift]:
                        samples.append(await _mixed(get, set_, plans))
    finally:
        await client.close()
    return figures


# -- (b) near-cache hits -------------------------------------------------------------------------


@dataclass
class Hits:
    #: (target, call) -> CPU ns per hit, one sample per round.
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)


HIT_KEYS: Final = KEYS[:100]


async def _hit_round(layer: Any, call: str, count: int) -> float:
    keys = HIT_KEYS
    size = len(keys)
    if call == "get":
        with stopwatch() as watch:
            for i in range(count):
                await layer.get(keys[i % size])
    else:
        get_nowait = layer.get_nowait
        with stopwatch() as watch:
            for i in range(count):
                get_nowait(keys[i % size])
    return watch.cpu_ns / count


async def _hits(url: str, plan: Plan) -> Hits:
    from rgruntime import open_runtime

    figures = Hits()
    prefix = f"hit{random.randrange(1 << 30)}:"
    async with (
        open_runtime(runtime_config(url, prefix)) as remote,
        open_runtime({"layers": {NEAR_LAYER: {}}}) as local,
    ):
        layers = {
            "Redis layer, near hit": remote.layer(NEAR_LAYER),
            "in-process layer": local.layer(NEAR_LAYER),
        }
        for layer in layers.values():
            for key in HIT_KEYS:
                await layer.set(key, VALUE)
                if layer.get_nowait(key) != VALUE:
                    raise RuntimeError(f"{key!r} is not a near hit after set: the run is void")
        cases = [(target, call) for target in layers for call in ("get", "get_nowait")]
        with frozen_heap():
            for case in cases:
                await _hit_round(layers[case[0]], case[1], plan.hits // 10)  # warm-up
            for round_number in range(plan.rounds * 2):
                shift = round_number % len(cases)
                for target, call in cases[shift:] + cases[:shift]:
                    sample = await _hit_round(layers[target], call, plan.hits)
                    figures.samples.setdefault((target, call), []).append(sample)
    return figures


# -- (c) coherence -------------------------------------------------------------------------------


@dataclass
class Coherence:
    #: (change, latency in seconds); a trial B never saw end counts as COHERENCE_TIMEOUT.
    trials: list[tuple[str, float]] = field(default_factory=list)
    timeouts: int = 0


class Peer:
    """Process B, spoken to in lines (see benchmarks/_coherence_peer.py)."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._process = process
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)

    async def send(self, *words: object) -> None:
        await self._stdin.send((" ".join(map(str, words)) + "\n").encode())

    async def receive(self) -> list[str]:
        while True:
            line = (await self._stdout.receive_until(b"\n", 1 << 20)).decode()
            if line.startswith(MARK):
                return line.split()[1:]


@asynccontextmanager
async def peer_process(backend: str, config: dict[str, Any]) -> Any:
    """Process B running ``config`` on ``backend``; stopped (and waited for) on exit."""
    command = [sys.executable, "-m", "benchmarks._coherence_peer", backend, json.dumps(config)]
    # stderr inherited: nothing reads a pipe of it, and a full pipe would stall the child.
    async with await anyio.open_process(command, cwd=_ROOT, stderr=None) as process:
        peer = Peer(process)
        try:
            with anyio.fail_after(30):
                ready = await peer.receive()
            if ready != ["ready"]:
                raise RuntimeError(f"the coherence peer said {ready!r}, not ready")
            yield peer
            await peer.send("quit")
            with anyio.fail_after(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()


async def _change(layer: Any, change: str, key: str, tag: str) -> None:
    if change == "invalidate key":
        await layer.invalidate(key=key)
    elif change == "delete":
        await layer.delete(key)
    elif change == "overwrite":
        await layer.set(key, b"new value", tags=[tag])
    else:
        await layer.invalidate(tags=[tag])


async def _coherence(backend: str, url: str, plan: Plan) -> Coherence:
    from rgruntime import open_runtime

    figures = Coherence()
    config = runtime_config(url, f"co{random.randrange(1 << 30)}:")
    rng = random.Random(14)
    async with open_runtime(config) as runtime, peer_process(backend, config) as peer:
        layer = runtime.layer(NEAR_LAYER)
        for trial in range(plan.trials):
            change = CHANGES[trial % len(CHANGES)]
            key, tag = f"coherence:{trial}", f"trial:{trial}"
            await peer.send("hold", key, tag, COHERENCE_TIMEOUT + PAUSE_MAX)
            with anyio.fail_after(30):
                answer = await peer.receive()
            if answer != ["held"]:
                raise RuntimeError(f"trial {trial}: the peer said {answer!r}, not held")
            await anyio.sleep(rng.uniform(0, PAUSE_MAX))
            await _change(layer, change, key, tag)
            returned = time.monotonic()
            with anyio.fail_after(30):
                answer = await peer.receive()
            if answer[0] == "stale":
                figures.timeouts += 1
                figures.trials.append((change, COHERENCE_TIMEOUT))
            else:
                figures.trials.append((change, float(answer[1]) - returned))
            if trial % 250 == 249:
                stderr_note(f"distributed: coherence on {backend}, {trial + 1} trials")
    return figures


# -- running and reporting -----------------------------------------------------------------------


@dataclass
class Results:
    throughput: Throughput
    hits: Hits
    coherence: Coherence


async def _measure(url: str, port: int, plan: Plan, backend: str) -> Results:
    stderr_note(f"distributed: throughput on {backend}")
    throughput = await _throughput(url, port, plan)
    stderr_note(f"distributed: near-cache hits on {backend}")
    hits = await _hits(url, plan)
    stderr_note(f"distributed: coherence on {backend} ({plan.trials} trials)")
    coherence = await _coherence(backend, url, plan)
    return Results(throughput, hits, coherence)


def _verdict(passed: bool) -> Text:
    return Text("PASS", "bold green") if passed else Text("FAIL", "bold red")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _throughput_table(backend: str, figures: Throughput) -> tuple[Table, bool]:
    table = Table(
        title=f"(a) {TASKS} tasks, {GET_SHARE:.0%} GET / {1 - GET_SHARE:.0%} SET, "
        f"{len(VALUE)} B values, on {backend}"
    )
    for column in ("client", "ops/s (best)", "ops/s (median)"):
        table.add_column(column, justify="left" if column == "client" else "right")
    for name, samples in (
        ("rgruntime layer, near_cache False (await get / set)", figures.layer),
        ("valkey-glide GET / SET, same bytes", figures.raw),
        ("(floor) RedisStore get / set + publish_invalidation", figures.store),
    ):
        table.add_row(name, f"{max(samples):,.0f}", f"{statistics.median(samples):,.0f}")
    ratio = max(figures.layer) / max(figures.raw)
    passed = ratio >= THROUGHPUT_LIMIT
    medians = statistics.median(figures.layer) / statistics.median(figures.raw)
    floor = max(figures.store) / max(figures.raw)
    table.caption = (
        f"layer ÷ raw {ratio:.2f} (medians {medians:.2f}); store floor ÷ raw {floor:.2f}; "
        f"acceptance ≥ {THROUGHPUT_LIMIT}: {'PASS' if passed else 'FAIL'}"
    )
    return table, passed


def _hits_table(backend: str, figures: Hits) -> tuple[Table, list[tuple[str, float, bool]]]:
    table = Table(title=f"(b) near-cache hit vs in-process hit, on {backend} (CPU ns per hit)")
    for column in ("target", "call", "ns (min)", "ns (median)"):
        table.add_column(column, justify="left" if column in ("target", "call") else "right")
    for (target, call), samples in figures.samples.items():
        table.add_row(target, call, f"{min(samples):,.0f}", f"{statistics.median(samples):,.0f}")
    checks = []
    for call in ("get", "get_nowait"):
        remote = min(figures.samples[("Redis layer, near hit", call)])
        local = min(figures.samples[("in-process layer", call)])
        ratio = remote / local
        checks.append((call, ratio, ratio <= HIT_LIMIT))
    return table, checks


def _coherence_table(backend: str, figures: Coherence) -> tuple[Table, bool]:
    table = Table(
        title=f"(c) coherence across two processes on {backend}: ms from A's change returning "
        "to B no longer serving the old value"
    )
    for column in ("change", "trials", "p50 ms", "p99 ms", "max ms", "min ms"):
        table.add_column(column, justify="left" if column == "change" else "right")
    groups: dict[str, list[float]] = {change: [] for change in CHANGES}
    for change, latency in figures.trials:
        groups[change].append(latency * 1000)
    groups["all"] = [latency * 1000 for _, latency in figures.trials]
    for change, values in groups.items():
        table.add_row(
            change,
            str(len(values)),
            f"{_percentile(values, 0.5):.2f}",
            f"{_percentile(values, 0.99):.2f}",
            f"{max(values):.2f}",
            f"{min(values):.2f}",
        )
    p99 = _percentile(groups["all"], 0.99)
    passed = p99 < COHERENCE_LIMIT_MS
    table.caption = (
        f"{figures.timeouts} trial(s) still stale after {COHERENCE_TIMEOUT:g} s; a negative time: "
        f"B dropped its copy before A's call returned. acceptance p99 < {COHERENCE_LIMIT_MS:g} "
        f"ms: {'PASS' if passed else 'FAIL'}"
    )
    return table, passed


def _acceptance(results: dict[str, Results]) -> Iterator[tuple[str, str, bool]]:
    for backend, result in results.items():
        raw, layer = max(result.throughput.raw), max(result.throughput.layer)
        yield (
            f"(a) {backend}: layer (near cache off) ≥ {THROUGHPUT_LIMIT} x raw glide",
            f"{layer:,.0f} / {raw:,.0f} ops/s = {layer / raw:.2f}",
            layer / raw >= THROUGHPUT_LIMIT,
        )
        for call, ratio, passed in _hits_table(backend, result.hits)[1]:
            yield (
                f"(b) {backend}: near hit {call} ≤ {HIT_LIMIT} x in-process",
                f"{ratio:.2f}",
                passed,
            )
        values = [latency * 1000 for _, latency in result.coherence.trials]
        p99 = _percentile(values, 0.99)
        yield (
            f"(c) {backend}: coherence p99 < {COHERENCE_LIMIT_MS:g} ms",
            f"p50 {_percentile(values, 0.5):.2f}, p99 {p99:.2f}, max {max(values):.2f} ms "
            f"({len(values)} trials)",
            p99 < COHERENCE_LIMIT_MS,
        )


def run(options: RunOptions, console: Console) -> None:
    from tests.servers import running_redis

    plan = Plan.of(options)
    results: dict[str, Results] = {}
    with running_redis() as server:
        for backend in BACKENDS:
            results[backend] = anyio.run(
                _measure, server.url, server.port, plan, backend, backend=backend
            )
    for backend, result in results.items():
        console.print()
        console.print(_throughput_table(backend, result.throughput)[0])
        console.print(_hits_table(backend, result.hits)[0])
        console.print(_coherence_table(backend, result.coherence)[0])
    console.print()
    table = Table(title="acceptance (issue 14), from this run's figures")
    for column in ("check", "figures", "verdict"):
        table.add_column(column)
    for label, figures, passed in _acceptance(results):
        table.add_row(label, figures, _verdict(passed))
    console.print(table)
