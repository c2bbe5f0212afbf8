"""Alerts: conditions on the metric series, cooldown and de-duplication, and the actions
against a local SMTP server (aiosmtpd) and a local HTTP server (Slack-style JSON and webhook),
on asyncio and trio."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller

from rgruntime import open_runtime
from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.observe.alerts import Alerts, FiredAlert
from rgruntime.observe.metrics import LayerPoint, MetricPoint
from rgruntime.observe.service import MetricsService

# -- local servers --------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = _free_port()  # aiosmtpd cannot take port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class _Posts(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    received: list[tuple[str, Any]] = []
    handler = type("Handler", (_Posts,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- cooldown and de-duplication, on a synthetic series ----------------------------------------


def _point(hits: int, misses: int) -> MetricPoint:
    figures: dict[str, Any] = {
        "hits": hits, "misses": misses, "evictions": 0, "expirations": 0, "invalidations": 0,
        "loads": misses, "load_failures": 0, "load_time": 0.1, "tokens_saved": 0,
        "cost_saved": 0.0, "entries": 5, "size_bytes": 500,
    }  # fmt: skip
    return MetricPoint(
        **figures,
        timestamp=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        seconds=60.0,
        layers={"response": LayerPoint(**figures)},
    )


def test_a_condition_that_holds_fires_once_per_cooldown() -> None:
    alerts = Alerts(wall=lambda: 0.0)
    condition = {
        "metric": "cache_hit_rate",
        "operator": "less_than",
        "threshold": 50,
        "window": "5m",
    }
    alert = alerts.create("Low Cache Hit Rate", condition, ["log"], cooldown="10m")
    low, high = _point(1, 9), _point(9, 1)
    # 50 minutes of ticks, the hit rate low all along.
    fired_at = [second for second in range(0, 3010, 10) if alerts.due(float(second), lambda _: low)]
    assert fired_at == [0, 600, 1200, 1800, 2400, 3000]
    # Clearing and holding again within the cooldown does not fire again (de-duplication).
    assert alerts.due(3010.0, lambda _: high) == []
    assert alerts.due(3020.0, lambda _: low) == []
    assert alerts.due(3600.0, lambda _: low) != []
    stats = alerts.stats()
    assert stats.fired == 7
    assert stats.suppressed == 301 - 6 + 1
    (first, *_) = alerts.history(alert.id)
    assert (first.value, first.threshold, first.metric) == (10.0, 50.0, "cache_hit_rate")
    assert "cache_hit_rate = 10" in first.message


def test_no_lookups_no_rate_no_alert() -> None:
    alerts = Alerts(wall=lambda: 0.0)
    alerts.create(
        "low", {"metric": "cache_hit_rate", "operator": "<", "threshold": 50, "window": 60}
    )
    assert alerts.due(0.0, lambda _: _point(0, 0)) == []


def test_a_layers_figure() -> None:
    alerts = Alerts(wall=lambda: 0.0)
    condition = {
        "metric": "misses",
        "operator": ">=",
        "threshold": 9,
        "window": 60,
        "layer": "response",
    }
    alerts.create("misses", condition)
    assert len(alerts.due(0.0, lambda _: _point(1, 9))) == 1
    other = {**condition, "layer": "tool"}
    alerts.create("tool misses", other)
    assert [fired.name for _, fired in alerts.due(10_000.0, lambda _: _point(1, 9))] == ["misses"]


def test_bad_alerts_are_refused_and_nothing_is_stored() -> None:
    alerts = Alerts(wall=lambda: 0.0)
    good = {"metric": "cache_hit_rate", "operator": "less_than", "threshold": 50, "window": "5m"}
    cases = [
        ({**good, "metric": "hit_ratio"}, ["log"], "condition.metric"),
        ({**good, "operator": "below"}, ["log"], "condition.operator"),
        ({**good, "threshold": "50"}, ["log"], "condition.threshold"),
        ({**good, "window": "soon"}, ["log"], "condition.window"),
        ({**good, "extra": 1}, ["log"], "condition"),
        (good, ["pager"], "actions"),
        (good, "log", "actions"),
    ]
    for condition, actions, field in cases:
        with pytest.raises(InvalidArgumentError, match=re.escape(field)):
            alerts.create("x", condition, actions)
    with pytest.raises(ConfigError, match=r"alerts\.configure"):
        alerts.create("x", good, ["email"])  # no SMTP server configured
    with pytest.raises(ConfigError, match=r"email\.recipients"):
        alerts.configure(
            email={"host": "localhost", "port": 25, "sender": "a@b.c", "recipients": []}
        )
    with pytest.raises(ConfigError, match=r"slack\.webhook_url"):
        alerts.configure(slack={"webhook_url": "ftp://x"})
    assert alerts.list() == []


# -- actions through real servers, on both backends --------------------------------------------


@pytest.mark.anyio
async def test_actions_reach_smtp_slack_webhook_and_callables(
    smtp: tuple[int, _Inbox], http: tuple[str, list[tuple[str, Any]]]
) -> None:
    port, inbox = smtp
    url, posts = http
    called: list[FiredAlert] = []

    async def page(fired: FiredAlert) -> None:
        called.append(fired)

    async with open_runtime({"layers": {"weather": {}}}) as runtime:
        service = MetricsService(runtime, bucket_seconds=0.2, tick=0.02)
        service.alerts.configure(
            email={"host": "127.0.0.1", "port": port, "sender": "cache@example.com",
                   "recipients": ["ops@example.com"]},
            slack={"webhook_url": f"{url}/slack"},
            webhook={"url": f"{url}/hook"},
        )  # fmt: skip
        await service.start()
        layer = runtime.layer("weather")
        for city in ("Paris", "Oslo", "Lima"):
            await layer.get(city)  # three misses, no hit: a hit rate of 0%
        alert = service.alerts.create(
            "Low Cache Hit Rate",
            {"metric": "cache_hit_rate", "operator": "less_than", "threshold": 50, "window": "5m"},
            actions=["email", "slack", "webhook", "log", page],
            cooldown="1h",
        )
        with anyio.fail_after(20):
            while not (inbox.messages and len(posts) == 2 and called):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        # More ticks: the condition still holds, the cooldown keeps it from firing again.
        suppressed = service.alerts.stats().suppressed
        with anyio.fail_after(20):
            while service.alerts.stats().suppressed < suppressed + 5:  # noqa: ASYNC110
                await anyio.sleep(0.02)
    (fired,) = service.alerts.history(alert.id)
    assert fired.value == 0.0
    assert len(inbox.messages) == 1
    mail = email.message_from_bytes(inbox.messages[0], policy=email.policy.default)
    assert mail["Subject"] == "[rgruntime] alert: Low Cache Hit Rate"
    assert mail["To"] == "ops@example.com"
    assert fired.message in mail.get_content()  # type: ignore[attr-defined]
    by_path = dict(posts)
    assert by_path["/slack"] == {"text": fired.message}
    assert by_path["/hook"]["name"] == "Low Cache Hit Rate"
    assert by_path["/hook"]["value"] == 0.0
    assert called == [fired]
    assert fired.outcomes == {
        "email": "sent", "slack": "sent", "webhook": "sent", "log": "sent", "page": "sent"
    }  # fmt: skip


@pytest.mark.anyio
async def test_a_failing_action_is_logged_and_counted_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(fired: FiredAlert) -> None:
        raise RuntimeError("pager down")

    async with open_runtime({"layers": {"weather": {}}}) as runtime:
        service = MetricsService(runtime, bucket_seconds=0.2, tick=0.02)
        service.alerts.configure(webhook={"url": "http://127.0.0.1:9/unreachable"})
        await service.start()
        await runtime.layer("weather").get("Paris")
        service.alerts.create(
            "misses", {"metric": "misses", "operator": ">=", "threshold": 1, "window": 60},
            actions=["webhook", broken],
        )  # fmt: skip
        with caplog.at_level(logging.ERROR, logger="rgruntime.alerts"), anyio.fail_after(20):
            while sum(service.alerts.stats().action_failures.values()) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        # The runtime goes on.
        await runtime.layer("weather").set("Paris", "sunny")
        assert await runtime.layer("weather").get("Paris") == "sunny"
    assert service.alerts.stats().action_failures == {"webhook": 1, "broken": 1}
    (fired,) = service.alerts.history()
    assert fired.outcomes["broken"].startswith("failed: RuntimeError('pager down')")
    assert any("pager down" in record.getMessage() or record.exc_info for record in caplog.records)


@pytest.mark.anyio
async def test_closing_the_runtime_cancels_actions_in_flight() -> None:
    started, cancelled = anyio.Event(), []

    async def hang(fired: FiredAlert) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(fired.name)
            raise

    with anyio.fail_after(20):
        async with open_runtime({"layers": {"weather": {}}}) as runtime:
            service = MetricsService(runtime, bucket_seconds=0.2, tick=0.02)
            await service.start()
            await runtime.layer("weather").get("Paris")
            service.alerts.create(
                "misses",
                {"metric": "misses", "operator": ">=", "threshold": 1, "window": 60},
                actions=[hang],
            )
            await started.wait()
    assert cancelled == ["misses"]
    with pytest.raises(RuntimeClosedError):
        await runtime.layer("weather").get("Paris")
