"""The ``rgruntime`` command: the demo runs end to end, reports every layer and reads right for
a newcomer; options are documented and checked (issue 13, items 2 and 8)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from rgruntime.cli import main


def run_demo(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rgruntime", "demo", *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_reports_every_layer(backend: str) -> None:
    result = run_demo("--backend", backend, "--requests", "300", "--latency-scale", "0.01")
    assert result.returncode == 0, result.stderr
    assert f"300 requests on {backend}" in result.stdout
    for layer in ("response", "model", "tool", "memory", "session"):
        assert layer in result.stdout
    # Semantic caching is on (the test extra installs it), says what it did, and did it.
    answered = re.search(
        r"(\d+) reworded goals were answered from the cache by meaning", result.stdout
    )
    assert answered is not None, result.stdout
    assert int(answered.group(1)) > 0
    # The table says what its columns add up.
    assert "not wall-clock time" in " ".join(result.stdout.split())


def test_no_time_is_claimed_without_latency() -> None:
    result = run_demo("--requests", "100", "--latency-scale", "0")
    assert result.returncode == 0, result.stderr
    assert "simulated latencies are off, so no time is saved" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 5
    assert not [row for row in rows if row.rstrip("│ ").endswith(" s")]


@pytest.mark.parametrize("max_size", ["1KB", "10KB", "100KB"])
def test_the_demo_runs_at_any_max_size(max_size: str) -> None:
    result = run_demo("--max-size", max_size, "--requests", "300", "--latency-scale", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "300 requests on asyncio" in result.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--requests", "0", "'0' is not a positive whole number"),
        ("--requests", "abc", "'abc' is not a whole number"),
        ("--concurrency", "1.5", "'1.5' is not a whole number"),
        ("--seed", "x", "'x' is not a whole number"),
        ("--latency-scale", "-1", "'-1' is not a number of 0 or more"),
        ("--latency-scale", "fast", "'fast' is not a number"),
        ("--max-size", "huge", "'huge' is not a size"),
    ],
)
def test_demo_rejects_a_bad_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", option, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert "_positive_int" not in error


def test_help_is_plain_text_and_documents_every_demo_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "``" not in top
    assert "demo" in top
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    demo = " ".join(capsys.readouterr().out.split())
    for option, words in (
        ("--backend", "the event loop"),
        ("--requests", "how many goals"),
        ("--concurrency", "requests in flight"),
        ("--seed", "random seed"),
        ("--latency-scale", "simulated model and tool latency"),
        ("--max-size", "byte budget"),
        ("--store", "where the cache lives"),
        ("--workers", "OS processes sharing --store"),
        ("--baseline", "each on its own embedded cache"),
    ):
        assert option in demo
        assert words in demo, option


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("rgruntime").__version__
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rgruntime {__import__('rgruntime').__version__}"
