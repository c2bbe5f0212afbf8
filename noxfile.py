"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``.

``nox -s tests`` is the command CI runs (``.ci/run``): it installs everything the suite needs into
its own virtual environment.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, every async test on asyncio and on trio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


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
