"""``rgruntime demo --store URL --workers N`` (issue 14, item 8): workers in separate OS processes
share one server, and answers one of them computed are served to the others; a bad URL or an
unreachable server is one plain line and an exit code."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from rgruntime.cli_ops import EXIT_UNREACHABLE, EXIT_USAGE, store_backend
from rgruntime.errors import ConfigError
from tests.servers import MemcachedServer, RedisClusterServers, RedisServer, free_port
from tests.test_cli import run_demo


def _figure(pattern: str, text: str) -> int:
    found = re.search(pattern, " ".join(text.split()))
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory", None),
        ("redis://127.0.0.1:6390/2", {"type": "redis", "url": "redis://127.0.0.1:6390/2"}),
        (
            "redis+cluster://a:7000,b:7001",
            {"type": "redis_cluster", "nodes": ["redis://a:7000", "redis://b:7001"]},
        ),
        ("memcached://a:11211,b", {"type": "memcached", "servers": ["a:11211", "b"]}),
    ],
)
def test_store_urls_become_the_guides_backends(url: str, expected: object) -> None:
    assert store_backend(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://db:3306",
        "redis://host:99999",
        "redis://host/not-a-db",
        "memcached://",
        "redis+cluster://",
        "localhost:6379",
    ],
)
def test_a_bad_store_url_names_the_option_and_the_forms(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        store_backend(url)
    assert raised.value.field == "--store"
    assert raised.value.value == url
    assert "redis://HOST:PORT" in raised.value.accepted


def test_demo_with_a_bad_url_says_one_line() -> None:
    result = run_demo("--store", "mysql://db:3306", "--requests", "10")
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("rgruntime demo: --store: 'mysql://db:3306' is not accepted")


def test_demo_workers_need_a_shared_store() -> None:
    result = run_demo("--workers", "2", "--requests", "10")
    assert result.returncode == EXIT_USAGE
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--workers" in result.stderr
    assert "--store" in result.stderr


@pytest.mark.parametrize("scheme", ["redis", "memcached"])
def test_demo_with_an_unreachable_server_says_one_line(scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_demo("--store", url, "--requests", "10", "--workers", "2")
    assert result.returncode == EXIT_UNREACHABLE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"rgruntime demo: cannot reach --store {url}: ")
    assert "Traceback" not in result.stderr


def _store_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The --store URL of the session's server of ``kind`` (started on first use)."""
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return redis.url
    if kind == "redis_cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return "redis+cluster://" + ",".join(str(node.address) for node in cluster.nodes)
    memcached: MemcachedServer = request.getfixturevalue("memcached_server")
    return f"memcached://{memcached.address}"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["redis", "redis_cluster", "memcached"])
def test_demo_workers_serve_each_other_answers(
    kind: str, backend: str, request: pytest.FixtureRequest
) -> None:
    url = _store_url(kind, request)
    result = run_demo(
        "--store", url, "--workers", "2", "--backend", backend,
        "--requests", "150", "--latency-scale", "0.02",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = " ".join(result.stdout.split())
    assert f"2 worker processes on {url} ({backend})" in out
    served = _figure(r"([\d,]+) answers computed by one worker were served to another", out)
    shared = _figure(r"in 2 workers made ([\d,]+) model calls", out)
    alone = _figure(r"each on its own cache made ([\d,]+) model calls", out)
    # The popular goals are asked by both workers: some answers cross over, and together the
    # workers call the model less than they do each on its own cache.
    assert served > 0
    assert shared < alone
    # The demo removed what it wrote: its prefix is empty on the server afterwards.
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        assert redis.cli("--scan", "--pattern", "rgdemo-*") == ""


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_store_without_its_client_library_says_which_extra(command: str) -> None:
    # As if valkey-glide were not installed: importing it fails.
    code = (
        "import sys; sys.modules['glide'] = None; from rgruntime.cli import main; "
        f"sys.exit(main([{command!r}, '--store', 'redis://127.0.0.1:6379']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'rgruntime[redis]'" in lines[0]
