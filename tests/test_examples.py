"""Every example runs, on both backends, and prints what it promises; one that needs an extra
says so at its top (issue 13, items 6 and 8)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rgruntime.extras import EXTRAS

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
    "guide_savings.py": "Hit rate: 66.7%",
    "guide_sessions.py": "resumed after 3 turns, history kept: 4 messages",
    "guide_tool_caching.py": "invalidate(pattern='weather_*') removed 2; answer cached: False",
    "guide_invalidation.py": "tags ['products'] (parent and children): 6",
    "guide_memory.py": "memory lookups: 3 preloaded, hit after preload: True, miss after add: True",
    "guide_events.py": "after data.updated, answered from the response cache: False",
    "guide_warming.py": "first user request answered from the cache: True",
    "guide_apscheduler.py": "APScheduler warmed the cache; next request cached: True",
    "distributed.py": "first worker after the second invalidated: cached=False",
}

# Examples that need a Redis server (REDIS_URL): given the session's (tests/conftest.py).
NEEDS_REDIS = {"distributed.py"}

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
def test_example_runs(example: str, backend: str, request: pytest.FixtureRequest) -> None:
    environment = dict(os.environ)
    if example in NEEDS_REDIS:
        environment["REDIS_URL"] = request.getfixturevalue("redis_server").url
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), backend],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED[example] in result.stdout


#: What the README's first command installs beyond rgruntime itself (pyproject's "examples").
EXAMPLES_EXTRA = (*EXTRAS["semantic"], "apscheduler")

HIDE = f"""
import importlib.abc, runpy, sys

class HideExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {set(EXAMPLES_EXTRA)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, HideExtras())
path = sys.argv[1]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


# (An example that needs a server says so at its top too; it is not run without one.)
@pytest.mark.parametrize("example", sorted(set(EXPECTED) - NEEDS_REDIS))
def test_an_example_that_needs_an_extra_says_so_at_its_top(example: str) -> None:
    """Run with the extras hidden (``pip install .`` alone): it runs, or its docstring says
    what to install and the error names it, never a bare ``No module named 'numpy'``."""
    path = EXAMPLES / example
    result = subprocess.run(
        [sys.executable, "-c", HIDE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 0:
        return
    top = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "pip install" in top, f"{example} needs an extra and does not say so"
    assert "README" in top
    last = result.stderr.strip().splitlines()[-1]
    assert "pip install 'rgruntime[semantic]'" in last or "apscheduler" in last, last
