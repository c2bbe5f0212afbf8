"""Every example runs, on both backends, and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

# A line each example must print: proof that it did its job, not just that it exited.
EXPECTED = {
    "quickstart.py": "london: {'temp': 17} (loader ran 1 time)",
    "invalidation.py": "by tag products:electronics: 2",
    "configuration.py": "tool entries after 5 writes: 3 (max_entries=3)",
    "guide_blocking.py": "blocking client, second call cached: True",
    "guide_configuration.py": "second 'Analyze document', cached: True from response",
    "guide_response_caching.py": "10 concurrent requests, model calls: 1",
    "guide_semantic_caching.py": "'How can I reset my password?': cached=True match=semantic",
    "guide_savings.py": "Cached responses: 4",
    "guide_sessions.py": "resumed after 3 turns, history kept: 4 messages",
}


def test_every_example_is_checked() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_runs(example: str, backend: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), backend],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED[example] in result.stdout
