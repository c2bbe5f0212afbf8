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
    "guide_tool_caching.py": "invalidate(pattern='weather_*') removed 2; answer cached: False",
    "guide_invalidation.py": "tags ['products'] (parent and children): 3",
    "guide_memory.py": "memory lookups: 3 preloaded, hit after preload: True, miss after add: True",
    "guide_events.py": "after data.updated, answered from the response cache: False",
    "guide_warming.py": "first user request answered from the cache: True",
    "guide_apscheduler.py": "APScheduler warmed the cache; next request cached: True",
}

# Examples of an asyncio-only library (APScheduler's AsyncIOScheduler): not run on trio.
ASYNCIO_ONLY = {"guide_apscheduler.py"}


def test_every_example_is_checked() -> None:
    # examples/integrations_*.py need an agent framework: tests/adapters/test_examples.py runs them.
    core = [
        path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("integrations_")
    ]
    assert sorted(core) == sorted(EXPECTED)


@pytest.mark.parametrize(
    ("example", "backend"),
    [
        (example, backend)
        for example in sorted(EXPECTED)
        for backend in ("asyncio", "trio")
        if not (backend == "trio" and example in ASYNCIO_ONLY)
    ],
)
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
