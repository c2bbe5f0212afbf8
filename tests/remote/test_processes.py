"""Two OS processes on one Redis server: what one changes, the other stops serving; what one
loads, the other reads instead of loading it again. (The benchmark measures how fast: here only
that it happens, within a bound a loaded machine keeps.)"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

import rgruntime
from rgruntime import Layer
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

_prefixes = itertools.count()
_ANSWER_LIMIT = 30.0  # the peer's start (imports) included


class Peer:
    def __init__(self, process: anyio.abc.Process) -> None:
        self._process = process
        assert process.stdout is not None
        self._lines = process.stdout
        self._buffer = b""

    async def line(self) -> str:
        with anyio.fail_after(_ANSWER_LIMIT):
            while b"\n" not in self._buffer:
                chunk = await self._lines.receive()
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    async def send(self, command: str) -> None:
        assert self._process.stdin is not None
        await self._process.stdin.send(command.encode() + b"\n")

    async def ask(self, command: str) -> str:
        await self.send(command)
        return await self.line()


@asynccontextmanager
async def peer(server: RedisServer, prefix: str, backend: str) -> AsyncIterator[Peer]:
    command = [sys.executable, "-m", "tests.remote.process_peer", server.url, prefix, backend]
    async with await anyio.open_process(command) as process:
        talking = Peer(process)
        try:
            assert await talking.line() == "ready"
            yield talking
            await talking.send("quit")
            with anyio.fail_after(_ANSWER_LIMIT):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()


def _runtime_config(redis_server: RedisServer) -> tuple[str, dict[str, object]]:
    prefix = f"p{next(_prefixes)}:"
    return prefix, {"cache_backend": {"type": "redis", "url": redis_server.url, "prefix": prefix}}


async def test_changes_in_one_process_reach_the_other(
    redis_server: RedisServer, anyio_backend_name: str
) -> None:
    prefix, config = _runtime_config(redis_server)
    async with (
        rgruntime.open_runtime(config) as runtime,
        peer(redis_server, prefix, anyio_backend_name) as other,
    ):
        layer: Layer = runtime.layer("response")
        await layer.set("overwritten", "v1")
        assert await other.ask("hold overwritten") == "v1"
        await layer.set("overwritten", "v2")
        assert await other.ask("until-changed overwritten v1") == "v2"

        await layer.set("deleted", "x")
        assert await other.ask("hold deleted") == "x"
        await layer.delete("deleted")
        assert await other.ask("until-changed deleted x") == "MISSING"

        await layer.set("tagged", "y", tags=["products:phones"])
        assert await other.ask("hold tagged") == "y"
        await runtime.invalidate(tags=["products"])
        assert await other.ask("until-changed tagged y") == "MISSING"


async def test_one_process_loads_and_the_other_reads_its_result(
    redis_server: RedisServer, anyio_backend_name: str
) -> None:
    prefix, config = _runtime_config(redis_server)
    async with (
        rgruntime.open_runtime(config) as runtime,
        peer(redis_server, prefix, anyio_backend_name) as other,
    ):
        calls = 0

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await anyio.sleep(0.5)
            return "loaded here"

        answers: list[str] = []

        async def ask_peer() -> None:
            answers.append(await other.ask("load shared"))

        async with anyio.create_task_group() as group:
            group.start_soon(ask_peer)
            mine = await runtime.layer("response").get_or_load("shared", loader)
        value, peer_calls = answers[0].rsplit(" ", 1)
        assert calls + int(peer_calls) == 1  # one of the two processes ran its loader
        assert value == mine
