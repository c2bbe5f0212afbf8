"""The README's Python blocks run, and print what their comments say (issue 13, item 8: its
quick-start comments were wrong: ``# True response 50`` printed 66, ``# 2: hierarchical tags``
printed 1).

A line ``print(...)  # X`` promises the output line ``X``. A block that runs its ``main`` on
both backends prints its lines once per run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_PROMISE = re.compile(r"^\s*print\(.*\)\s+# (.+)$")


def _blocks() -> list[str]:
    return _BLOCK.findall(README.read_text())


def test_the_readme_has_its_quick_starts() -> None:
    assert len(_blocks()) == 3


@pytest.mark.parametrize("block", _blocks(), ids=lambda block: block.splitlines()[0])
def test_a_readme_block_prints_what_it_says(block: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    promised = [m.group(1) for line in block.splitlines() if (m := _PROMISE.match(line))]
    assert promised, "a quick start shows what it prints"
    printed = result.stdout.splitlines()
    runs, rest = divmod(len(printed), len(promised))
    assert runs >= 1
    assert rest == 0, printed
    assert printed == promised * runs
