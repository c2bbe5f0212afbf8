"""What an embedder is, the registry of embedders by name, and the worker-thread limiter.

An embedder turns a batch of texts into unit-length float32 vectors, one row per text:

    vectors = await embedder.embed(["What's the weather?", "How's the weather today?"])
    vectors.shape == (2, embedder.dimension)

Vectors are L2-normalized, so that the dot product of two rows is their cosine similarity: the one
similarity convention of this package (see :mod:`rgruntime.semantic.records`).

Local models compute on the CPU for milliseconds per text, which would stall every other task of
the event loop: they run in worker threads through :func:`embedding_limiter`, which leaves one core
to the event loop (on the 2-core machine this is built for, a second embedding thread made the loop
wait for a core: gaps over 5 ms, 50 times a second). Index writes (a few inserts per call, see
``SemanticCache``) use the separate :func:`worker_limiter`; lookups search in the cache's own
threads (:mod:`rgruntime.semantic.searcher`), or through :func:`worker_limiter` while the cache's
actor is not running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import numpy as np
import numpy.typing as npt
from anyio.lowlevel import RunVar

from rgruntime.errors import ConfigError, InvalidArgumentError

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDING_THREADS",
    "WORKER_THREADS",
    "Embedder",
    "EmbedderFactory",
    "Vectors",
    "check_texts",
    "embedder_names",
    "embedding_limiter",
    "make_embedder",
    "normalize_rows",
    "register_embedder",
    "worker_limiter",
]

Vectors = npt.NDArray[np.float32]

#: The embedder used when none is named: all-MiniLM-L6-v2 on the CPU (see ``docs/semantic.md``).
DEFAULT_EMBEDDER: Final = "minilm"

#: Worker threads for index writes (and searches while no cache actor runs), per event loop;
#: also the number of search threads each running cache keeps.
WORKER_THREADS: Final = 2
#: Worker threads for local embedding models, per event loop: every core but one.
EMBEDDING_THREADS: Final = max(1, (os.cpu_count() or 2) - 1)

# One limiter per event loop run: a limiter made for one loop must not be used by another (tests
# run asyncio and trio in one process), and none may exist before a loop runs.
_WORKERS: Final = RunVar[anyio.CapacityLimiter]("rgruntime_semantic_workers")
_EMBEDDERS: Final = RunVar[anyio.CapacityLimiter]("rgruntime_semantic_embedders")


def _limiter(variable: RunVar[anyio.CapacityLimiter], threads: int) -> anyio.CapacityLimiter:
    try:
        return variable.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(threads)
        variable.set(limiter)
        return limiter


def worker_limiter() -> anyio.CapacityLimiter:
    """This event loop's limiter of index search and write threads."""
    return _limiter(_WORKERS, WORKER_THREADS)


def embedding_limiter() -> anyio.CapacityLimiter:
    """This event loop's limiter of embedding threads."""
    return _limiter(_EMBEDDERS, EMBEDDING_THREADS)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors (see the module documentation)."""

    #: Identifies the model: two embedders with the same name give the same vectors, so an
    #: embedding cache and a persisted index may be keyed by it.
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length row per text, shape ``(len(texts), dimension)``, dtype float32."""
        ...


#: Builds an embedder from keyword options (``make_embedder("openai", api_key=...)``).
EmbedderFactory = Callable[..., Embedder]

_FACTORIES: dict[str, EmbedderFactory] = {}


def register_embedder(name: str, factory: EmbedderFactory, *, replace: bool = False) -> None:
    """Make ``make_embedder(name, **options)`` call ``factory(**options)``."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("name", name, "a non-empty embedder name")
    if name in _FACTORIES and not replace:
        raise InvalidArgumentError(
            "name", name, "a name not registered yet (pass replace=True to replace it)"
        )
    _FACTORIES[name] = factory


def embedder_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def make_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    """The embedder registered under ``name``, built with ``options``."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError("embedding_model", name, f"a known embedder: {', '.join(_FACTORIES)}")
    return factory(**options)


def check_texts(texts: Sequence[str], field: str = "texts") -> list[str]:
    """``texts`` as a list of strings, or an error naming the first bad one."""
    if isinstance(texts, str):
        raise InvalidArgumentError(field, texts, "a sequence of strings, not one string")
    checked = list(texts)
    for text in checked:
        if not isinstance(text, str):
            raise InvalidArgumentError(field, text, "strings")
    return checked


def normalize_rows(vectors: npt.NDArray[Any]) -> Vectors:
    """``vectors`` as float32 rows of length 1 (a zero row stays zero)."""
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalized: Vectors = (rows / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return normalized
