"""Metrics over time (the ring of buckets) and the Prometheus exposition, on both backends."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount

from rgruntime import ResonantGenesis, open_runtime
from rgruntime.errors import InvalidArgumentError
from rgruntime.observe.operations import Operations
from rgruntime.observe.prometheus import RuntimeCollector, metrics_app, registry
from rgruntime.observe.service import MetricsService

pytestmark = pytest.mark.anyio


async def _slow_value() -> str:
    await anyio.sleep(2)
    return "sunny"


@pytest.mark.virtual_time
async def test_series_per_interval_per_layer() -> None:
    config = {"layers": {"weather": {"ttl": 90, "max_entries": 2}, "news": {}}}
    async with open_runtime(config) as runtime:
        service = MetricsService(runtime, wall=lambda: 1_800_000_000.0)
        await service.start()
        # As the client wires them: maintenance passes close the buckets that are due.
        Operations(runtime, on_activity=service.sample)
        weather, news = runtime.layer("weather"), runtime.layer("news")
        # Minute 0: three loads of 2 s (misses), two hits, one eviction (room for two).
        for city in ("Paris", "Oslo", "Paris", "Lima", "Lima"):
            await weather.get_or_load(city, _slow_value)
        await anyio.sleep(60 - anyio.current_time() % 60 + 1)
        # Minute 1: one hit on news, one miss; Lima expires 90 s after it was written.
        await news.set("headline", "x")
        await news.cleanup()  # its pass closes minute 0: the traffic below is minute 1's
        await news.get("headline")
        await news.get("other")
        await anyio.sleep(120)
        await weather.cleanup()
        points = service.get_metrics(period="1h")
    assert len(points) >= 3
    first, second = points[0], points[1]
    assert (first.hits, first.misses) == (2, 3)
    assert first.hit_rate == 40.0
    assert str(first.hit_rate) == "40.0"
    assert first.layers["weather"].loads == 3
    # Minute 0 closed at the first pass of minute 1 (61 s): what was counted in between is
    # spread over the time, so 60/61 of the six seconds of loading falls in minute 0.
    assert first.layers["weather"].load_time == pytest.approx(2.0 * 60 / 61)
    assert first.layers["weather"].evictions == 1
    assert first.layers["news"].requests == 0
    # Minutes 1 and 2 were closed together by the read at the end (no pass in between): the
    # news traffic is spread over them, and counted once.
    later = points[1:]
    assert sum(point.layers["news"].hits for point in later) == 1
    assert sum(point.layers["news"].misses for point in later) == 1
    assert second.seconds == 60
    assert sum(point.expirations for point in points) >= 1
    assert first.timestamp.year == 2027  # 1.8e9 s after the epoch
    assert first.seconds == pytest.approx(60, abs=10)
    assert [point.timestamp for point in points] == sorted(point.timestamp for point in points)
    assert first.as_dict()["layers"]["weather"]["evictions"] == 1
    with pytest.raises(InvalidArgumentError, match="period"):
        service.get_metrics(period="an hour")


@pytest.mark.virtual_time
async def test_memory_is_a_fixed_ring() -> None:
    async with open_runtime() as runtime:
        service = MetricsService(runtime, bucket_seconds=1, buckets=5, tick=1)
        await service.start()
        for _ in range(30):
            await runtime.layer("response").get("k")
            await anyio.sleep(1)
        points = service.get_metrics(period="1d")
    assert len(points) == 6  # the five kept, and the one in progress
    assert sum(point.misses for point in points) <= 6


async def test_prometheus_exposition_read_at_scrape_time() -> None:
    async with open_runtime({"layers": {"weather": {"max_entries": 1}}}) as runtime:
        operations = Operations(runtime)
        collector = RuntimeCollector(
            runtime,
            puts=lambda layer: operations.monitor(layer).writes,
            savings=lambda: {"weather": (120, 0.25)},
        )
        weather = runtime.layer("weather")
        await weather.get_or_load("Paris", _value)
        await weather.get("Paris")
        await weather.set("Oslo", "rain")  # evicts Paris
        await operations.settle()
        families = {
            family.name: family
            for family in text_string_to_metric_families(
                generate_latest(registry(collector)).decode()
            )
        }
        app = Starlette(routes=[Mount("/metrics", app=metrics_app(collector))])
        status, body = await _get(app, "/metrics/")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    weather_label = (("layer", "weather"),)
    assert samples["rgruntime_cache_gets_total", (("layer", "weather"), ("result", "hit"))] == 1
    assert samples["rgruntime_cache_gets_total", (("layer", "weather"), ("result", "miss"))] == 1
    assert samples["rgruntime_cache_puts_total", weather_label] == 2
    assert (
        samples["rgruntime_cache_evictions_total", (("cause", "size"), ("layer", "weather"))] == 1
    )
    assert samples["rgruntime_cache_entries", weather_label] == 1
    assert samples["rgruntime_cache_size_bytes", weather_label] > 0
    assert samples["rgruntime_cache_load_duration_seconds_count", weather_label] == 1
    # A histogram: cumulative buckets up to +Inf, which holds every load.
    infinite = (("layer", "weather"), ("le", "+Inf"))
    assert samples["rgruntime_cache_load_duration_seconds_bucket", infinite] == 1
    assert samples["rgruntime_tokens_saved_total", weather_label] == 120
    assert samples["rgruntime_cost_saved_usd_total", weather_label] == 0.25
    assert status == 200
    assert 'rgruntime_cache_gets_total{layer="weather",result="hit"} 1.0' in body


async def _value() -> str:
    return "sunny"


async def _get(app: Any, path: str) -> tuple[int, str]:
    """One GET through the ASGI interface, as a server would call the app."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body.decode()


async def test_client_metrics_count_tokens_and_dollars_saved() -> None:
    async with ResonantGenesis() as client:
        agent = await client.agents.create(name="FAQ Bot")
        for _ in range(3):
            await client.sessions.execute(agent_id=agent.id, goal="What are your hours?")
        (point,) = client.cache.get_metrics(period="1h")
        savings = client.cache.get_savings(period="1h")
        collector = client.cache.prometheus_collector()
        text = generate_latest(registry(collector)).decode()
    assert point.layers["response"].hits == 2
    assert point.tokens_saved == savings.tokens_saved > 0
    assert point.cost_saved == pytest.approx(float(savings.cost_saved))
    assert f'rgruntime_tokens_saved_total{{layer="response"}} {float(savings.tokens_saved)}' in text
