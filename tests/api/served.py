"""``rgruntime serve`` in a subprocess, for the tests that talk to it over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.api.conftest import ADMIN, AGENT, READ

_LISTENING = re.compile(r"rgruntime API on (http://\S+) ")


@contextmanager
def rgruntime_serve(backend: str, *options: str) -> Iterator[str]:
    """The URL of a server started with a read and an admin token and the agent AGENT."""
    command = [
        sys.executable, "-m", "rgruntime", "serve", "--port", "0", "--backend", backend,
        "--agent", AGENT, "--model-latency", "0", "--token", ADMIN, "--read-token", READ,
        *options,
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = _LISTENING.search(line)
        assert found, f"{line!r} {process.stderr.read() if process.poll() is not None else ''}"
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, errors = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, errors
    assert "stopped" in output
    assert "Traceback" not in errors
