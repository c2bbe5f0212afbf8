"""Removal listeners hear every key that leaves a layer, with the reason, and cannot break it."""

from __future__ import annotations

import logging

import anyio
import anyio.abc
import pytest

import rgruntime
from rgruntime.runtime.removals import RemovalListener, RemovalReason

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

Heard = list[tuple[str, str, RemovalReason]]


def recorder(heard: Heard) -> RemovalListener:
    def listener(layer: str, key: str, reason: RemovalReason) -> None:
        heard.append((layer, key, reason))

    return listener


async def test_every_way_out_is_reported_with_its_reason() -> None:
    async with rgruntime.open_runtime({"layers": {"tool": {"max_entries": 2}}}) as runtime:
        tool = runtime.layer("tool")
        heard: Heard = []
        tool.add_removal_listener(recorder(heard))

        await tool.set("a", 1, ttl=10)
        await tool.set("a", 2)  # replaced
        await tool.set("b", 1, tags=["weather"])
        await tool.set("c", 1)  # over max_entries: one of a, b is evicted
        await tool.cleanup()
        evicted = [key for _, key, reason in heard if reason == "evicted"]
        assert len(evicted) == 1
        assert evicted[0] in {"a", "b"}

        survivor = ({"a", "b"} - set(evicted)).pop()
        await tool.delete("c")
        await tool.set("d", 1, ttl=5, tags=["weather"])
        await tool.invalidate(key=survivor)
        await anyio.sleep(6)
        await tool.cleanup()  # d expired
        await tool.set("e", 1)
        await tool.clear()

        assert heard == [
            ("tool", "a", "replaced"),
            ("tool", evicted[0], "evicted"),
            ("tool", "c", "deleted"),
            ("tool", survivor, "invalidated"),
            ("tool", "d", "expired"),
            ("tool", "e", "cleared"),
        ]
        assert tool.stats().entries == 0


async def test_a_trim_is_reported_as_trimmed() -> None:
    async with rgruntime.open_runtime() as runtime:
        tool = runtime.layer("tool")
        heard: Heard = []
        tool.add_removal_listener(recorder(heard))
        await tool.set("a", 1)
        assert tool.delete_nowait("a", reason="trimmed") is True
        with pytest.raises(rgruntime.InvalidArgumentError):
            tool.delete_nowait("a", reason="evicted")  # type: ignore[arg-type]
        assert heard == [("tool", "a", "trimmed")]


async def test_a_failing_listener_is_logged_counted_and_the_layer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        heard: Heard = []

        def broken(layer_name: str, key: str, reason: RemovalReason) -> None:
            raise ValueError("listener bug")

        layer.add_removal_listener(broken)
        layer.add_removal_listener(recorder(heard))
        with caplog.at_level(logging.ERROR, logger="rgruntime.runtime"):
            await layer.set("k", 1)
            assert await layer.invalidate(key="k") == 1
            await layer.set("k2", 2)
            assert await layer.delete("k2")
        # The second listener still heard both, the layer still works, the failures are counted.
        assert [key for _, key, _ in heard] == ["k", "k2"]
        assert layer.statistics().listener_failures == 2
        assert layer.statistics().removal_listeners == 2
        assert "listener bug" in caplog.text
        assert "'k'" in caplog.text
        await layer.set("k3", 3)
        assert await layer.get("k3") == 3


async def test_unregistering_stops_the_calls_and_is_idempotent() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = runtime.layer("tool")
        heard: Heard = []
        unregister = layer.add_removal_listener(recorder(heard))
        await layer.set("a", 1)
        await layer.delete("a")
        unregister()
        unregister()
        await layer.set("b", 1)
        await layer.delete("b")
        assert [key for _, key, _ in heard] == ["a"]
        assert layer.statistics().removal_listeners == 0


async def test_a_listener_must_be_callable() -> None:
    async with rgruntime.open_runtime() as runtime:
        with pytest.raises(TypeError, match="removal listener: expected a callable"):
            runtime.layer("tool").add_removal_listener("not callable")  # type: ignore[arg-type]


async def test_a_service_that_fails_to_start_is_its_callers_error() -> None:
    async def broken(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        raise ValueError("cannot start")

    async with rgruntime.open_runtime() as runtime:
        supervisor = runtime._require_supervisor()
        with pytest.raises(ValueError, match="cannot start"):
            await supervisor.start_service(broken, "broken service")
        # The layers go on.
        await runtime.layer("tool").set("k", 1)
        assert await runtime.layer("tool").get("k") == 1
