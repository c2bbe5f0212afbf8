"""A runtime's semantic indices: one per (layer, embedder), started on first use.

``await semantic_index(runtime, "response", embedder="minilm", **options)`` starts a
:class:`~rgruntime.semantic.SemanticCache` actor in the runtime's task group (so it stops with
the runtime) and binds it to the layer (:class:`~rgruntime.semantic.layer_index.
LayerSemanticIndex`); later calls return the same index. It lives here, not on the ``Runtime``,
so that the runtime package knows nothing of the semantic one above it (no import cycle).
"""

from __future__ import annotations

import weakref
from typing import Any

import anyio

from rgruntime.errors import ConfigError, RuntimeClosedError
from rgruntime.runtime.runtime import Runtime
from rgruntime.semantic.cache import SemanticCache
from rgruntime.semantic.embedder import Embedder, make_embedder
from rgruntime.semantic.layer_index import LayerSemanticIndex
from rgruntime.semantic.records import SemanticStats

__all__ = ["semantic_index", "semantic_stats"]


class _Indices:
    """The semantic indices of one runtime, and the settings each was started with."""

    __slots__ = ("indices", "lock")

    def __init__(self) -> None:
        self.indices: dict[tuple[str, str], tuple[LayerSemanticIndex, dict[str, Any]]] = {}
        self.lock = anyio.Lock()


# Weak: the indices go with their runtime (their actors stopped when it closed).
_BY_RUNTIME: weakref.WeakKeyDictionary[Runtime, _Indices] = weakref.WeakKeyDictionary()


async def semantic_index(
    runtime: Runtime,
    layer: str = "response",
    *,
    embedder: Embedder | str = "minilm",
    **options: Any,
) -> LayerSemanticIndex:
    """The semantic index of ``runtime``'s ``layer`` for ``embedder``, started on first use.

    ``options`` go to :class:`~rgruntime.semantic.SemanticCache` (``threshold``, ``verifier``,
    ``user_verifier``, ``candidates``, ``embedding_cache_size``, ``hnsw``). Later calls for the
    same layer and embedder return the same index; asking for it again with other settings is a
    :class:`~rgruntime.ConfigError` (vectors of two models, or indices of two settings, cannot be
    mixed).
    """
    target = runtime.layer(layer)  # raises if the runtime is not open, or has no such layer
    registry = _BY_RUNTIME.get(runtime)
    if registry is None:
        registry = _BY_RUNTIME[runtime] = _Indices()
    # Indexed by the name given (a registered name, or the embedder's own): a second use must
    # not load the model again just to learn its name.
    name = embedder if isinstance(embedder, str) else embedder.name
    known = registry.indices.get((layer, name))
    if known is not None and (not options or options == known[1]):
        return known[0]  # running already: no lock to take (every semantic lookup asks)
    async with registry.lock:  # two first uses must not start two indices
        known = registry.indices.get((layer, name))
        if known is not None:
            index, settings = known
            if options and options != settings:
                raise ConfigError(
                    "semantic_index options",
                    options,
                    f"the settings of the index already running for layer {layer!r} and "
                    f"embedder {name!r} ({settings}), or none",
                )
            return index
        model = make_embedder(embedder) if isinstance(embedder, str) else embedder
        cache = SemanticCache(model, **options)
        await runtime.start_service(cache.run, f"rgruntime semantic index {layer}")
        index = LayerSemanticIndex(target, cache)
        registry.indices[(layer, name)] = (index, dict(options))
        return index


def semantic_stats(runtime: Runtime) -> dict[str, SemanticStats]:
    """Each running semantic index's statistics (hit-similarity histogram included), by
    ``"<layer>:<embedder>"``."""
    if not runtime.is_open:
        raise RuntimeClosedError("the runtime is not open")
    registry = _BY_RUNTIME.get(runtime)
    if registry is None:
        return {}
    return {
        f"{layer}:{name}": index.stats() for (layer, name), (index, _) in registry.indices.items()
    }
