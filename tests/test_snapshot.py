"""Warm restarts: save, close, reopen, and the same requests are hits."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import msgpack
import pytest

import rgruntime
from rgruntime import ResonantGenesis
from rgruntime.runtime import snapshot
from rgruntime.runtime.snapshot import SnapshotError

pytestmark = pytest.mark.anyio


async def test_save_close_reopen_and_the_entries_are_hits(tmp_path: Path) -> None:
    path = tmp_path / "cache.snapshot"
    async with rgruntime.open_runtime() as runtime:
        tools = runtime.layer("tool")
        await tools.set("weather:paris", {"temp": 21}, tags=["weather:eu"])
        await tools.set("bytes", b"\x00\x01")
        await runtime.layer("session").set("s1", ["hello"], ttl=None)
        report = await runtime.save(path)
        assert report.entries["tool"] == 2
        assert report.entries["session"] == 1
    async with rgruntime.open_runtime() as runtime:
        report = await runtime.load(path)
        assert report.total == 3
        tools = runtime.layer("tool")
        assert await tools.get("weather:paris") == {"temp": 21}
        assert await tools.get("bytes") == b"\x00\x01"
        assert runtime.layer("session").ttl("s1") is None
        ttl = tools.ttl("weather:paris")
        assert ttl is not None
        assert 290 < ttl <= 300  # the TTL it had left
        assert await tools.invalidate(tags=["weather"]) == 1  # tags came back too
        assert tools.stats().hits == 2


async def test_values_that_cannot_leave_the_process_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.snapshot"
    async with rgruntime.open_runtime() as runtime:
        tools = runtime.layer("tool")
        await tools.set("lock", threading.Lock())
        await tools.set("kept", "fine")
        report = await runtime.save(path)
        assert (report.entries["tool"], report.skipped) == (1, 1)
    async with rgruntime.open_runtime() as runtime:
        await runtime.load(path)
        assert await runtime.layer("tool").get("kept") == "fine"
        assert "lock" not in runtime.layer("tool")


async def test_a_corrupt_or_foreign_file_is_refused_and_bad_records_skipped(
    tmp_path: Path,
) -> None:
    foreign = tmp_path / "foreign"
    foreign.write_bytes(msgpack.packb({"not": "a snapshot"}))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    async with rgruntime.open_runtime() as runtime:
        for path in (foreign, empty):
            with pytest.raises(SnapshotError):
                await runtime.load(path)
        good = tmp_path / "good"
        await runtime.layer("tool").set("k", 1)
        await runtime.save(good)
        # A record that is not one of ours (skipped, counted) and a truncated tail (ignored):
        # the rest loads.
        data = good.read_bytes()
        tampered = tmp_path / "tampered"
        tampered.write_bytes(data + msgpack.packb(["tool", "evil", 10, b"\x93garbage"]) + b"\x94")
        await runtime.layer("tool").clear()
        report = await runtime.load(tampered)
        assert (report.total, report.skipped) == (1, 1)
        assert await runtime.layer("tool").get("k") == 1
        assert "evil" not in runtime.layer("tool")


async def test_the_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "cache.snapshot"
    async with rgruntime.open_runtime() as runtime:
        await runtime.layer("tool").set("k", 1)
        await runtime.save(path)
        names = [path.name async for path in anyio.Path(tmp_path).iterdir()]
        assert names == ["cache.snapshot"]  # no temporary file left behind


async def test_what_expired_while_saved_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.snapshot"
    async with rgruntime.open_runtime() as runtime:
        await runtime.layer("model").set("short", 1, ttl=300)
        await runtime.layer("model").set("long", 2, ttl=3600)
        await runtime.save(path)
    # Reopened 400 s (of wall-clock time) later.
    saved_clock = snapshot.time.time
    monkeypatch.setattr(snapshot.time, "time", lambda: saved_clock() + 400)
    async with rgruntime.open_runtime() as runtime:
        report = await runtime.load(path)
        model = runtime.layer("model")
        assert (report.entries["model"], report.expired) == (1, 1)
        assert "short" not in model
        ttl = model.ttl("long")
        assert ttl is not None
        assert 3100 < ttl <= 3200


async def test_a_persistent_client_answers_yesterdays_questions_from_cache(
    tmp_path: Path,
) -> None:
    path = tmp_path / "client.snapshot"
    config = {"persist": str(path)}
    async with ResonantGenesis(cache_config=config) as client:
        agent = await client.agents.create(name="FAQ", agent_id="faq")
        first = await client.sessions.execute(agent_id=agent.id, goal="Business hours?")
        assert not first.cached
    assert path.exists()
    async with ResonantGenesis(cache_config=config) as client:
        assert client.runtime.last_restore is not None
        assert client.runtime.last_restore.total >= 1
        agent = await client.agents.create(name="FAQ", agent_id="faq")
        again = await client.sessions.execute(agent_id=agent.id, goal="Business hours?")
        assert (again.cached, again.layer, again.output) == (True, "response", first.output)


def test_a_persist_path_that_is_not_one_is_refused() -> None:
    with pytest.raises(rgruntime.ConfigError) as raised:
        rgruntime.open_runtime({"persist": 42})
    assert raised.value.field.endswith("persist")
