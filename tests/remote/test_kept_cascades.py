"""What depends on a removal, when the server cannot be asked about it: kept, then looked up.

The in-process store stands for a server whose ``dependents_of`` fails (as a server gone away
mid-cascade would) or never answers, on virtual time: the retry waits only for the breaker's
backoff, and nothing here depends on how long anything takes.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
import pytest

import rgruntime
from rgruntime import Runtime
from rgruntime.runtime.remote_layer import RemoteLayer
from rgruntime.stores import StoreUnavailableError
from rgruntime.stores.memory import MemoryServer, MemoryStore
from tests.remote.conftest import compute_a_chain, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

_PREFIX = "c:"


class _LookupsAway(MemoryStore):
    """The in-process store, whose lookups of what depends on the store names in ``away`` fail
    as an unreachable server's do, and wait for ``hang`` (when set) to be set first."""

    def __init__(self, server: MemoryServer) -> None:
        super().__init__(prefix=_PREFIX, server=server)
        self.away: set[str] = set()
        self.hang: anyio.Event | None = None
        self.looked_up: list[str] = []
        self.waiting = 0

    async def dependents_of(self, key: str) -> frozenset[str]:
        if self.hang is not None:
            self.waiting += 1
            await self.hang.wait()
        if key in self.away:
            raise StoreUnavailableError("memory", "dependents_of", "the server went away")
        self.looked_up.append(key)
        return await super().dependents_of(key)


def _runtime(store: MemoryStore, **tool: object) -> Runtime:
    return rgruntime.open_runtime({"cache_backend": store, "layers": {"tool": tool}})


async def _chain_on(server: MemoryServer) -> None:
    """The chain computed by a runtime that then stops: only the server's edges know of it."""
    async with _runtime(MemoryStore(prefix=_PREFIX, server=server)) as computing:
        await compute_a_chain(computing)


async def _on_the_server(server: MemoryServer, names: Iterable[str]) -> list[bool]:
    async with MemoryStore(prefix=_PREFIX, server=server) as store:
        return [await store.get(name) is not None for name in names]


def _kept(runtime: Runtime, layer: str) -> tuple[int, int]:
    health = runtime.layer(layer).statistics().store
    assert health is not None
    return health.kept_cascades, health.cascades_dropped


async def test_dependents_the_server_could_not_be_asked_about_go_when_it_answers() -> None:
    server = MemoryServer()
    await _chain_on(server)
    store = _LookupsAway(server)
    async with _runtime(store) as remover:
        store.away = {"model:summary"}  # the summary's lookup fails, mid-cascade
        await remover.layer("tool").delete("weather")
        assert await _on_the_server(server, ["model:summary", "response:answer"]) == [
            False,  # found from the tool result, and removed
            True,  # computed from the summary: the server could not say so yet
        ]
        assert _kept(remover, "model") == (1, 0)  # kept by the layer that asked

        store.away.clear()  # the server answers again: the writer task looks it up

        async def answer_gone() -> bool:
            return await _on_the_server(server, ["response:answer"]) == [False]

        await eventually(answer_gone)
        assert _kept(remover, "model") == (0, 0)
        assert store.looked_up.count("model:summary") == 1  # once it answered, once


async def test_lookups_kept_beyond_the_limit_drop_the_oldest_and_say_so() -> None:
    server = MemoryServer()
    async with _runtime(MemoryStore(prefix=_PREFIX, server=server)) as computing:
        tools, answers = computing.layer("tool"), computing.layer("response")
        assert isinstance(answers, RemoteLayer)
        for n in range(3):
            await tools.set(f"k{n}", n)
            answers.record_edges(f"a{n}", [(tools, f"k{n}")])  # as the dependency graph does
            await answers.set(f"a{n}", n)
    store = _LookupsAway(server)
    async with _runtime(store, write_back_limit=2) as remover:
        store.away = {f"tool:k{n}" for n in range(3)}
        for n in range(3):
            await remover.layer("tool").delete(f"k{n}")
        assert _kept(remover, "tool") == (2, 1)
        store.away.clear()

        async def looked_up() -> bool:
            return _kept(remover, "tool") == (0, 1)

        await eventually(looked_up)
    # The oldest was dropped: what depends on it lives out its TTL; the others went.
    names = ["response:a0", "response:a1", "response:a2"]
    assert await _on_the_server(server, names) == [True, False, False]


async def test_a_writer_cancelled_mid_lookup_keeps_the_lookup_and_says_so_at_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = MemoryServer()
    await _chain_on(server)
    store = _LookupsAway(server)
    async with _runtime(store) as remover:
        store.away = {"tool:weather"}
        await remover.layer("tool").delete("weather")
        assert _kept(remover, "tool") == (1, 0)
        store.hang = anyio.Event()  # the writer's retry waits for an answer that never comes
        store.away.clear()
        await eventually(lambda: store.waiting == 1)
        # Closing: the writer gets its flush time, then is cancelled in the middle of the lookup.
    left = [record.getMessage() for record in caplog.records if "never reached" in record.message]
    assert len(left) == 1
    assert "1 removal(s) whose dependents were not looked up" in left[0]
    # Nothing half done: the dependents are still on the server, and were never looked up.
    assert store.looked_up == []
    assert await _on_the_server(server, ["model:summary", "response:answer"]) == [True, True]


async def test_a_kept_cascade_follows_a_cycle_of_edges_once() -> None:
    server = MemoryServer()
    async with _runtime(MemoryStore(prefix=_PREFIX, server=server)) as computing:
        tools, answers = computing.layer("tool"), computing.layer("response")
        assert isinstance(tools, RemoteLayer)
        assert isinstance(answers, RemoteLayer)
        await tools.set("k", 1)
        await answers.set("a", 2)
        answers.record_edges("a", [(tools, "k")])
        tools.record_edges("k", [(answers, "a")])  # each computed from the other
    store = _LookupsAway(server)
    async with _runtime(store) as remover:
        store.away = {"tool:k"}
        await remover.layer("tool").invalidate(key="k")
        store.away.clear()

        async def looked_up() -> bool:
            return _kept(remover, "tool") == (0, 0)

        await eventually(looked_up)
    assert await _on_the_server(server, ["tool:k", "response:a"]) == [False, False]
    assert sorted(store.looked_up) == ["response:a", "tool:k"]  # each once: the cycle ended
