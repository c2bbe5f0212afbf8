"""``rgruntime serve --store URL``: API servers sharing one Redis serve each other's answers; a bad
URL or an unreachable server is one plain line and an exit code."""

from __future__ import annotations

import pytest

from rgruntime.cli_ops import EXIT_UNREACHABLE, EXIT_USAGE
from tests.api.conftest import AGENT
from tests.api.served import rgruntime_serve
from tests.api.test_cli_ops import rgruntime
from tests.servers import RedisServer, free_port


def test_serve_with_a_bad_store_url_says_one_line() -> None:
    result = rgruntime("serve", "--port", "0", "--store", "redis://host:99999")
    assert result.returncode == EXIT_USAGE
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("rgruntime serve: --store: 'redis://host:99999'")


def test_serve_with_an_unreachable_store_says_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    result = rgruntime("serve", "--port", "0", "--store", url)
    assert result.returncode == EXIT_UNREACHABLE
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("rgruntime serve: cannot reach --store: ")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_two_servers_on_one_store_share_answers(backend: str, redis_server: RedisServer) -> None:
    store = ("--store", redis_server.url, "--store-prefix", f"serve-{backend}:")
    goal = "What is your return policy?"
    with rgruntime_serve(backend, *store) as first, rgruntime_serve(backend, *store) as second:
        warmed = rgruntime("warm", AGENT, goal, "--url", first)
        assert warmed.returncode == 0, warmed.stderr
        assert "1 warmed, 0 already cached" in warmed.stdout
        # The second server never ran the goal: the answer the first computed is in the store.
        again = rgruntime("warm", AGENT, goal, "--url", second)
        assert again.returncode == 0, again.stderr
        assert "0 warmed, 1 already cached" in again.stdout
