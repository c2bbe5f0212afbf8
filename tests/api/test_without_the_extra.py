"""Without the api extra (no starlette, no hypercorn) the core works and the API says what to
install: a fresh interpreter whose import system refuses those packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HIDE_API = """
import importlib.abc, sys

class HideExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"starlette", "hypercorn"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideExtra())
"""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_API + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_core_and_the_command_line_need_no_server() -> None:
    result = _run(
        """
        import rgruntime, rgruntime.cli, rgruntime.remote
        assert "starlette" not in sys.modules and "hypercorn" not in sys.modules
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_serving_names_the_extra() -> None:
    result = _run(
        """
        import anyio
        from rgruntime import ResonantGenesis

        async def main():
            async with ResonantGenesis() as client:
                await client.serve_api(port=0)

        anyio.run(main)
        """
    )
    assert "pip install 'rgruntime[api]'" in result.stderr
    cli = _run("from rgruntime.cli import main; sys.exit(main(['serve', '--port', '0']))")
    assert cli.returncode == 2
    assert "Traceback" not in cli.stderr
    assert "pip install 'rgruntime[api]'" in cli.stderr
