"""The operations commands against a running ``rgruntime serve``: tables, --json, plain errors
and exit codes a script can test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rgruntime.cli_ops import (
    EXIT_AUTH,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests.api.conftest import ADMIN, AGENT, READ
from tests.api.served import rgruntime_serve


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with rgruntime_serve("asyncio") as served:
        yield served


def rgruntime(*arguments: str, token: str | None = ADMIN) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RGRUNTIME_")}
    environment["COLUMNS"] = "160"  # rich wraps headers on narrower terminals
    if token is not None:
        environment["RGRUNTIME_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "rgruntime", *arguments],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result


def test_warm_then_stats(url: str, tmp_path: Path) -> None:
    goals = tmp_path / "goals.txt"
    goals.write_text("What are your hours?\n\nHow do I reset my password?\n")
    warmed = rgruntime(
        "warm",
        AGENT,
        "What is your return policy?",
        "--goals-file",
        str(goals),
        "--url",
        url,
        "--batch",
        "1",
    )
    assert warmed.returncode == 0, warmed.stderr
    assert "3 warmed, 0 already cached, 0 not cacheable, 0 failed (of 3)" in warmed.stdout
    again = rgruntime("warm", AGENT, "What are your hours?", "--url", url, "--json")
    assert json.loads(again.stdout)["already_cached"] == ["What are your hours?"]
    table = rgruntime("stats", "--url", url, token=READ)
    assert table.returncode == 0
    assert "response" in table.stdout
    assert "hit rate" in table.stdout
    figures = json.loads(rgruntime("stats", "--url", url, "--json", token=READ).stdout)
    assert figures["layers"]["response"]["hits"] >= 1


def test_invalidate_get_delete(url: str) -> None:
    rgruntime("warm", AGENT, "Where is my order?", "--url", url)
    removed = rgruntime(
        "invalidate", "--agent-id", AGENT, "--key", "Where is my order?", "--url", url, "--json"
    )
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["invalidated"] >= 1
    missing = rgruntime("get", f"response:{AGENT}:nothing", "--url", url)
    assert missing.returncode == EXIT_NOT_FOUND
    assert missing.stderr.startswith("rgruntime get: 404: no entry")
    read_only = rgruntime("invalidate", "--pattern", "*", "--url", url, token=READ)
    assert read_only.returncode == EXIT_AUTH
    assert "admin scope" in read_only.stderr


def test_errors_are_one_plain_line_with_a_code(url: str) -> None:
    no_token = rgruntime("stats", "--url", url, token=None)
    assert no_token.returncode == EXIT_AUTH
    assert no_token.stderr.strip() == "rgruntime stats: 401: a bearer token is required"
    bad = rgruntime("invalidate", "--tag", "", "--url", url)
    assert bad.returncode == EXIT_USAGE
    assert "tags[0]" in bad.stderr
    unreachable = rgruntime("stats", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == EXIT_UNREACHABLE
    assert unreachable.stderr.startswith("rgruntime stats: cannot reach http://127.0.0.1:9")
    assert rgruntime("stats", "--url", "not a url").returncode in (EXIT_USAGE, EXIT_UNREACHABLE)
    assert rgruntime("warm", AGENT, "--url", url).returncode == EXIT_USAGE  # no goals


def test_analyze_and_diagnose_against_a_running_server(url: str) -> None:
    for command in ("analyze", "diagnose"):
        result = rgruntime(command, "--url", url, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)


def test_serve_refuses_a_public_address_without_tokens() -> None:
    result = rgruntime("serve", "--host", "0.0.0.0", "--port", "0", token=None)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("rgruntime serve: host: '0.0.0.0' is not accepted")


def test_every_option_documents_its_default() -> None:
    for command in ("serve", "stats", "invalidate", "warm", "get", "delete", "analyze", "diagnose"):
        text = " ".join(rgruntime(command, "--help").stdout.split())
        options = [word for word in text.split() if word.startswith("--") and word != "--help"]
        assert options, command
        assert text.count("default:") >= len({o.strip("[],") for o in options}) // 2
        assert "exit codes:" in text
