"""Missing extras name the extra to install (issue 13, item 6).

Each case runs in a fresh interpreter whose import system refuses the ``semantic`` extra's
packages, as on a machine where only ``pip install rgruntime`` was run. Before, the runtime's
``except ImportError`` branch imported ``rgruntime.semantic.errors``, which imports numpy again:
the user got a bare ``ModuleNotFoundError: No module named 'numpy'``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rgruntime.extras import EXTRAS

HIDE_SEMANTIC = f"""
import importlib.abc, sys

class HideExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {set(EXTRAS["semantic"])!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, HideExtra())
"""

HINT = "pip install 'rgruntime[semantic]'"


def _run(body: str, backend: str) -> subprocess.CompletedProcess[str]:
    script = HIDE_SEMANTIC + textwrap.dedent(body) + f"\nanyio.run(main, backend={backend!r})\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_runtimes_semantic_index_names_the_extra(backend: str) -> None:
    result = _run(
        """
        import anyio, rgruntime
        from rgruntime.extras import MissingExtraError

        async def main():
            async with rgruntime.open_runtime() as runtime:
                try:
                    from rgruntime.semantic import semantic_index

                    await semantic_index(runtime, "response")
                except MissingExtraError as error:
                    print("refused:", error)
        """,
        backend,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: semantic caching needs the 'semantic' extra" in result.stdout
    assert HINT in result.stdout


def test_a_semantic_agent_is_refused_at_creation_naming_the_extra(backend: str) -> None:
    result = _run(
        """
        import anyio
        from rgruntime import ConfigError, ResonantGenesis

        async def main():
            async with ResonantGenesis() as client:
                try:
                    await client.agents.create(
                        name="Support Bot", cache_config={"semantic_cache": {"enabled": True}}
                    )
                except ConfigError as error:
                    print("refused:", error.field, "|", error.accepted)
                # Everything else works without the extra.
                agent = await client.agents.create(name="FAQ Bot")
                await client.sessions.execute(agent_id=agent.id, goal="Hours?")
                again = await client.sessions.execute(agent_id=agent.id, goal="Hours?")
                print("exact caching:", again.cached)
        """,
        backend,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: cache_config.semantic_cache.embedding_model |" in result.stdout
    assert HINT in result.stdout
    assert "exact caching: True" in result.stdout


def test_the_built_in_memory_store_names_the_extra(backend: str) -> None:
    result = _run(
        """
        import anyio
        from rgruntime import ResonantGenesis
        from rgruntime.extras import MissingExtraError

        async def main():
            async with ResonantGenesis() as client:
                agent = await client.agents.create(name="Knowledge Agent")
                try:
                    await client.memory.add(agent.id, "Refunds take 5 days.")
                except MissingExtraError as error:
                    print("refused:", error)
        """,
        backend,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "refused: the built-in memory store (client.memory) needs the 'semantic'" in result.stdout
    )
    assert HINT in result.stdout


def test_a_local_embedder_name_is_refused_by_the_client_naming_the_extra(backend: str) -> None:
    result = _run(
        """
        import anyio
        from rgruntime import ConfigError, ResonantGenesis

        async def main():
            try:
                ResonantGenesis(embedder="hashing")
            except ConfigError as error:
                print("refused:", error.field, "|", error.accepted)
        """,
        backend,
    )
    assert result.returncode == 0, result.stderr
    assert "refused: embedder |" in result.stdout
    assert HINT in result.stdout


@pytest.mark.parametrize(
    ("extra", "backend_dict"),
    [
        ("redis", {"type": "redis", "url": "redis://localhost:6379"}),
        ("redis", {"type": "redis_cluster", "nodes": ["redis://localhost:7000"]}),
        ("memcached", {"type": "memcached", "servers": ["localhost:11211"]}),
    ],
)
def test_a_remote_backend_without_its_client_names_the_extra(
    extra: str, backend_dict: dict[str, object]
) -> None:
    # Refused when the client is built (nothing connects yet), naming the extra.
    hide = HIDE_SEMANTIC.replace(repr(set(EXTRAS["semantic"])), repr({EXTRAS[extra][0]}))
    script = hide + textwrap.dedent(
        f"""
        from rgruntime import ResonantGenesis
        from rgruntime.extras import MissingExtraError
        try:
            ResonantGenesis(cache_backend={backend_dict!r})
        except MissingExtraError as error:
            print("refused:", error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'rgruntime[{extra}]'" in result.stdout
