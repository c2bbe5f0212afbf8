"""Remote stores: the Redis client choice (coredis vs valkey-glide) and rgruntime's stores.

Real servers on loopback, started for the run (tests/servers.py): a standalone redis-server, a
3-master Redis Cluster and memcached. On asyncio and on trio, for each client and target:

- **sequential**: one task, GETs of 200-byte values over 100 keys, µs per call (median of rounds);
- **100 tasks**: 100 concurrent tasks issuing GETs, operations per second (best of rounds);
- rgruntime's own stores through their interface: ``RedisStore.get`` / ``set`` (a Lua script with
  two tags), ``MemcachedStore.get`` (pymemcache in threads), beside the raw clients under them;
- **cancellation**: a GET cancelled by ``anyio.fail_after`` while the server sleeps
  (``DEBUG SLEEP``); then whether the next GET on the same client answers correctly.

Rounds are interleaved across implementations so that the machine's slow spells hit all of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from benchmarks import RunOptions

Get = Callable[[str], Awaitable[Any]]
KEYS = [f"bench:{i}" for i in range(100)]
VALUE = b"v" * 200
TASKS = 100


@dataclass
class Row:
    name: str
    sequential_us: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)


@dataclass
class Plan:
    sequential: int
    per_task: int
    rounds: int


async def _sequential(get: Get, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        await get(KEYS[i % len(KEYS)])
    return (time.perf_counter() - started) / count * 1e6


async def _concurrent(get: Get, per_task: int) -> float:
    async def worker(offset: int) -> None:
        for i in range(per_task):
            await get(KEYS[(offset + i) % len(KEYS)])

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for offset in range(TASKS):
            group.start_soon(worker, offset)
    return TASKS * per_task / (time.perf_counter() - started)


class _Servers:
    def __init__(self) -> None:
        from tests.servers import running_memcached, running_redis, running_redis_cluster

        self._stack = ExitStack()
        self.redis = self._stack.enter_context(running_redis())
        self.cluster = self._stack.enter_context(running_redis_cluster())
        self.memcached = self._stack.enter_context(running_memcached())

    def close(self) -> None:
        self._stack.close()


# -- clients -------------------------------------------------------------------------------------


async def _coredis(servers: _Servers, cluster: bool) -> tuple[Any, Callable[[], Awaitable[None]]]:
    import coredis

    port = servers.cluster.nodes[0].port if cluster else servers.redis.port
    client: Any = (
        coredis.RedisCluster("127.0.0.1", port) if cluster else coredis.Redis("127.0.0.1", port)
    )
    await client.__aenter__()

    async def close() -> None:
        await client.__aexit__(None, None, None)

    return client, close


async def _glide(servers: _Servers, cluster: bool) -> tuple[Any, Callable[[], Awaitable[None]]]:
    from glide import (
        GlideClient,
        GlideClientConfiguration,
        GlideClusterClient,
        GlideClusterClientConfiguration,
        NodeAddress,
    )

    client: Any
    if cluster:
        nodes = [NodeAddress("127.0.0.1", node.port) for node in servers.cluster.nodes]
        client = await GlideClusterClient.create(GlideClusterClientConfiguration(nodes))
    else:
        address = [NodeAddress("127.0.0.1", servers.redis.port)]
        client = await GlideClient.create(GlideClientConfiguration(address))
    return client, client.close


def _store_config(servers: _Servers, kind: str) -> dict[str, Any]:
    if kind == "redis":
        return {"type": "redis", "url": servers.redis.url, "prefix": "bench:"}
    if kind == "redis_cluster":
        return {"type": "redis_cluster", "nodes": servers.cluster.urls, "prefix": "bench:"}
    return {"type": "memcached", "servers": [servers.memcached.address], "prefix": "bench:"}


async def _raw_pymemcache(servers: _Servers) -> tuple[Get, Callable[[], Awaitable[None]]]:
    from pymemcache.client.base import PooledClient

    client = PooledClient(
        ("127.0.0.1", servers.memcached.port), max_pool_size=16, default_noreply=False
    )
    limiter = anyio.CapacityLimiter(16)
    for key in KEYS:
        client.set(key, VALUE)

    async def get(key: str) -> Any:
        return await anyio.to_thread.run_sync(client.get, key, limiter=limiter)

    async def close() -> None:
        client.close()

    return get, close


# -- one backend ---------------------------------------------------------------------------------


Opener = Callable[[], Awaitable[tuple[Get, Callable[[], Awaitable[None]]]]]


def _openers(servers: _Servers) -> Iterator[tuple[str, Opener]]:
    from rgruntime.stores import make_store

    for cluster in (False, True):
        target = "cluster" if cluster else "standalone"

        for client_name, factory in (("coredis", _coredis), ("valkey-glide", _glide)):

            async def open_client(factory: Any = factory, cluster: bool = cluster) -> Any:
                client, close = await factory(servers, cluster)
                for key in KEYS:
                    await client.set(key, VALUE)
                return client.get, close

            yield f"{client_name} GET ({target})", open_client

        kind = "redis_cluster" if cluster else "redis"

        async def open_store(kind: str = kind) -> Any:
            store = make_store(_store_config(servers, kind))
            await store.__aenter__()
            for key in KEYS:
                await store.set(key, VALUE, tags=["bench", "bench:a"])

            async def close() -> None:
                await store.__aexit__(None, None, None)

            return store.get, close

        yield f"rgruntime RedisStore.get ({target})", open_store

        async def open_store_set(kind: str = kind) -> Any:
            store = make_store(_store_config(servers, kind))
            await store.__aenter__()

            async def set_(key: str) -> None:
                await store.set(key, VALUE, ttl=60, tags=["bench", "bench:a"])

            async def close() -> None:
                await store.__aexit__(None, None, None)

            return set_, close

        yield f"rgruntime RedisStore.set, 2 tags ({target})", open_store_set

    yield "pymemcache GET via to_thread", lambda: _raw_pymemcache(servers)

    async def open_memcached() -> Any:
        store = make_store(_store_config(servers, "memcached"))
        await store.__aenter__()
        for key in KEYS:
            await store.set(key, VALUE, tags=["bench:a"])

        async def close() -> None:
            await store.__aexit__(None, None, None)

        return store.get, close

    yield "rgruntime MemcachedStore.get (2 tag generations)", open_memcached


async def _measure_backend(servers: _Servers, plan: Plan) -> tuple[list[Row], list[str]]:
    openers = list(_openers(servers))
    rows = {name: Row(name) for name, _ in openers}
    for round_number in range(plan.rounds):
        # Rotate the order from round to round (interleaved rounds).
        shift = round_number % len(openers)
        for name, opener in openers[shift:] + openers[:shift]:
            get, close = await opener()
            try:
                await _sequential(get, plan.sequential // 10)  # warm-up
                rows[name].sequential_us.append(await _sequential(get, plan.sequential))
                rows[name].throughput.append(await _concurrent(get, plan.per_task))
            finally:
                await close()
    return list(rows.values()), await _cancellation(servers)


async def _cancellation(servers: _Servers) -> list[str]:
    """Cancel a GET while the server sleeps, then check the client's next GET."""
    from tests.servers import RedisServer

    notes = []
    server: RedisServer = servers.redis
    for client_name, factory in (("coredis", _coredis), ("valkey-glide", _glide)):
        client, close = await factory(servers, False)
        try:
            await client.set("cancel:k", b"1")
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.to_thread.run_sync, server.cli, "DEBUG", "SLEEP", "0.5")
                await anyio.sleep(0.05)
                timed_out = False
                try:
                    with anyio.fail_after(0.1):
                        await client.get("cancel:k")
                except TimeoutError:
                    timed_out = True
            with anyio.fail_after(5):
                after = await client.get("cancel:k")
            notes.append(
                f"{client_name}: GET during DEBUG SLEEP "
                f"{'bounded by fail_after' if timed_out else 'NOT bounded'}; next GET "
                f"{'correct' if after in (b'1', '1') else f'WRONG ({after!r})'}"
            )
        finally:
            await close()
    return notes


def _table(backend: str, rows: list[Row]) -> Table:
    table = Table(title=f"Remote stores on {backend} (loopback; GET of 200 B unless said)")
    table.add_column("client / store")
    table.add_column("sequential µs/call (median)", justify="right")
    table.add_column(f"{TASKS} tasks ops/s (best)", justify="right")
    for row in rows:
        table.add_row(
            row.name,
            f"{statistics.median(row.sequential_us):,.0f}",
            f"{max(row.throughput):,.0f}",
        )
    return table


def run(options: RunOptions, console: Console) -> None:
    plan = (
        Plan(sequential=300, per_task=10, rounds=options.rounds or 1)
        if options.quick
        else Plan(sequential=2000, per_task=50, rounds=options.rounds or 3)
    )
    servers = _Servers()
    try:
        for backend in ("asyncio", "trio"):
            rows, notes = anyio.run(_measure_backend, servers, plan, backend=backend)
            console.print()
            console.print(_table(backend, rows))
            for note in notes:
                console.print(f"  cancellation ({backend}): {note}")
    finally:
        servers.close()
