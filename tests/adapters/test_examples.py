"""Every integration example runs (on asyncio, as its framework) and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent.parent / "examples"

# Lines each example must print: the acceptance points of issue 18, shown by the example.
EXPECTED = {
    "integrations_langchain.py": [
        "same question twice, model calls: 1",
        "replayed message has a new id: True",
        "paraphrase served by meaning: semantic",
        "invalidate(tags=['support:billing']) removed 1\nmodel calls: 3",
        "5 concurrent identical requests, model calls: 1",
    ],
    "integrations_openai_agents.py": [
        "same question twice, model calls: 1",
        "second run's usage: 0 tokens",
        "paraphrase served by meaning: True",
        "invalidate(tags=['faq']) removed 1; model calls: 2",
        "5 concurrent identical runs, model calls: 1",
    ],
    "integrations_pydantic_ai.py": [
        "same question twice, model calls: 1",
        "second run's usage: 0 tokens",
        "paraphrase served by meaning: True",
        "invalidate(tags=['faq']) removed 1; model calls: 2",
        "5 concurrent identical runs, model calls: 1",
    ],
    "integrations_dspy.py": [
        "same question twice, model calls: 1",
        "second call's usage: {}",
        "paraphrase served by meaning: True",
        "invalidate(tags=['faq']) removed 1; model calls: 2",
        "5 concurrent identical calls, model calls: 1",
    ],
    "integrations_litellm.py": [
        "same question twice, model calls: 1",
        "paraphrase served by meaning: True",
        "cache={'no-cache': True} asked the model: True",
        "invalidate(tags=['faq']) removed 1; model calls: 3",
        "5 concurrent identical calls, model calls: 1",
    ],
}

#: Imported by the examples, not one itself.
HELPERS = {"integrations_local_model.py"}


def test_every_integration_example_is_checked() -> None:
    found = {path.name for path in EXAMPLES.glob("integrations_*.py")} - HELPERS
    assert found == set(EXPECTED)


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_integration_example_runs(example: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[example]:
        assert line in result.stdout, (line, result.stdout)
