"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``adapters``,
``fuzz``, ``browser``.

``nox -s tests`` is the command CI runs (``.ci/run``): it installs everything the suite needs into
its own virtual environment.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, every async test on asyncio and on trio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


#: The framework versions the adapters were checked with (the extras allow newer minors).
ADAPTER_PINS = (
    "langchain-core==1.8.3",
    "langchain-openai==1.7.4",
    "openai-agents==0.25.0",
    "pydantic-ai-slim[openai]==2.78.0",
    "dspy==3.4.1",
    "litellm==1.110.2",
)


@nox.session
def adapters(session: nox.Session) -> None:
    """The framework adapters against the real frameworks (tests/adapters, the integration
    examples, mypy on the adapter modules). The core install stays free of every framework."""
    session.install("-e", ".[adapters,typecheck]", *ADAPTER_PINS)
    session.run("pytest", "tests/adapters", *session.posargs)
    session.run(
        "mypy", "--strict", *sorted(str(path) for path in Path("rgruntime/adapters").glob("*.py"))
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[typecheck]")
    session.run("mypy")


@nox.session
def eval_semantic(session: nox.Session) -> None:
    """Semantic-cache quality and speed on the shared data sets (docs/semantic.md)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", "semantic", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks beside the peers measured in the same run: ``nox -s bench [-- SUITE ...]``."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """schemathesis against the HTTP API served on asyncio and trio, with a read and an admin
    token: no 5xx, no answer the OpenAPI document does not declare. FUZZ_EXAMPLES (default 60)
    sets the examples per operation."""
    session.install("-e", ".[test]", "schemathesis>=4.32,<5")
    session.run("pytest", "-p", "no:cacheprovider", "tests/fuzz/fuzz_api.py", *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The dashboard in headless Chromium (Playwright driving Debian's chromium: no browser
    download). Installs chromium with apt-get when it is missing (as root). DASHBOARD_SCREENSHOT
    =docs/dashboard.png refreshes the screenshot in docs/api.md."""
    import shutil

    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "chromium", external=True)
    session.install("-e", ".[test]", "playwright>=1.45")
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/browser/browse_dashboard.py", *session.posargs
    )
