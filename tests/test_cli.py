"""The ``rgruntime`` command: the demo runs end to end and reports every layer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rgruntime.cli import main


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_reports_every_layer(backend: str) -> None:
    options = ["--backend", backend, "--requests", "300", "--latency-scale", "0.01", "--seed", "7"]
    result = subprocess.run(
        [sys.executable, "-m", "rgruntime", "demo", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"300 requests on {backend}" in result.stdout
    for layer in ("response", "model", "tool", "memory", "session"):
        assert layer in result.stdout


def test_demo_rejects_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--requests", "0"])
    assert exit_info.value.code == 2
    assert "'0' is not a positive whole number" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("rgruntime").__version__
