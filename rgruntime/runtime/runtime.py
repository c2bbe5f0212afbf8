"""The runtime: a supervisor and its layer actors, living inside one task group.

``async with open_runtime(config) as runtime:`` starts them; leaving the block cancels them all
(loads in flight included) and returns once every task has ended. Nothing starts at import time,
and nothing binds to an event loop before the block is entered.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from rgruntime._taskgroups import close_cancelled
from rgruntime.config import RuntimeConfig
from rgruntime.errors import (
    ConfigError,
    InvalidArgumentError,
    LayerNotFoundError,
    RuntimeClosedError,
)
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.clock import backend_clock
from rgruntime.runtime.dependencies import DependencyGraph
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.stats import CacheStats, LayerStatistics
from rgruntime.runtime.supervisor import Supervisor

if TYPE_CHECKING:
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.layer_index import LayerSemanticIndex
    from rgruntime.semantic.records import SemanticStats

__all__ = ["Runtime", "current_runtime", "open_runtime", "use_runtime"]


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Runtime:
    """An in-process cache runtime: five layers by default, more by name.

    Use it as an async context manager (``open_runtime`` builds one). The same object cannot be
    opened twice; open a new one instead.
    """

    def __init__(self, config: RuntimeConfig | Mapping[str, Any] | None = None) -> None:
        self.config = RuntimeConfig.coerce(config)
        self._state = _State.NEW
        self._supervisor: Supervisor | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._dependencies = DependencyGraph(cascade_on_expiry=self.config.cascade_on_expiry)
        self._current_token: Token[Runtime | None] | None = None
        # Semantic indices by (layer, embedder name), and the settings each was made with.
        self._semantic: dict[tuple[str, str], tuple[LayerSemanticIndex, dict[str, Any]]] = {}
        self._semantic_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"<Runtime {self._state.value} layers={list(self.config.layers)}>"

    async def __aenter__(self) -> Runtime:
        if self._state is not _State.NEW:
            raise RuntimeError(f"this Runtime is {self._state.value}; a Runtime opens only once")
        self._state = _State.OPEN
        self._supervisor = Supervisor(
            dict(self.config.layers), backend_clock(), self.config.rebalance_interval
        )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self._supervisor.run, name="rgruntime supervisor")
            # The dependency graph lives in the supervisor's task group, with the layers.
            await self._supervisor.start_service(
                functools.partial(
                    self._dependencies.run,
                    self._supervisor.layers,
                    self._supervisor.invalidate_all,
                ),
                "rgruntime dependencies",
            )
        except BaseException as error:
            self._state = _State.CLOSED
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(type(error), error, error.__traceback__)
            raise
        self._task_group = task_group
        self._current_token = _opened(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._state = _State.CLOSED
        _closed(self, self._current_token)
        assert self._task_group is not None
        return await close_cancelled(self._task_group, exc_type, exc, traceback)

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    @property
    def layers(self) -> Mapping[str, Layer]:
        """The running layers by name (a read-only view)."""
        return MappingProxyType(self._require_supervisor().layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; :class:`~rgruntime.LayerNotFoundError` if there is none."""
        layers = self._require_supervisor().layers
        try:
            return layers[name]
        except KeyError:
            raise LayerNotFoundError(name, tuple(layers)) from None

    async def add_layer(
        self, name: str, *, sizer: Callable[[Any], int] | None = None, **settings: Any
    ) -> Layer:
        """Start one more layer while running, with the settings a layer dict accepts.

        Settings not given come from the runtime's defaults (``default_ttl``, ``max_entries``,
        ``strategy``...). A new layer does not take a share of the runtime's ``max_size``: give
        it a ``max_size`` of its own if it must be bounded by bytes. ``sizer(value) -> bytes``
        weighs values written without ``size=`` (default :func:`rgruntime.estimate_size`); when
        it raises, that write fails with :class:`~rgruntime.InvalidArgumentError` and the layer
        goes on.
        """
        supervisor = self._require_supervisor()
        if sizer is not None and not callable(sizer):
            raise InvalidArgumentError("sizer", sizer, "a callable taking a value, returning bytes")
        return await supervisor.add_layer(self.config.new_layer(name, settings), sizer)

    async def invalidate(
        self,
        *,
        key: str | None = None,
        keys: Iterable[str] | None = None,
        pattern: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> int:
        """:meth:`Layer.invalidate` over every layer; returns the total removed.

        Returns once what depended on the removed entries has gone too (see
        :mod:`rgruntime.runtime.dependencies`); the total counts those dependents.
        """
        selection = Selection.of(key=key, keys=keys, pattern=pattern, tags=tags)
        cascaded = self._dependencies.cascaded
        removed = await self._require_supervisor().invalidate_all(selection)
        await self._dependencies.settled()
        return removed + self._dependencies.cascaded - cascaded

    async def start_service(self, function: Callable[..., Any], name: str) -> None:
        """Run ``await task_group.start(function)`` in the runtime's task group, beside the
        layers: ``function`` takes ``task_status`` and reports itself started; it is cancelled
        when the runtime closes."""
        await self._require_supervisor().start_service(function, name)

    @property
    def dependencies(self) -> DependencyGraph:
        """The dependency graph: which cached entries were computed from which."""
        return self._dependencies

    async def semantic_index(
        self, layer: str = "response", *, embedder: Embedder | str = "minilm", **options: Any
    ) -> LayerSemanticIndex:
        """The semantic index of ``layer`` for ``embedder``, started on first use.

        ``options`` go to :class:`~rgruntime.semantic.SemanticCache` (``threshold``,
        ``verifier``, ``user_verifier``, ``candidates``, ``embedding_cache_size``, ``hnsw``).
        Later calls for the same layer and embedder return the same index; asking for it again
        with other settings is a :class:`~rgruntime.ConfigError` (vectors of two models, or
        indices of two settings, cannot be mixed). Needs the ``semantic`` extra.
        """
        supervisor = self._require_supervisor()
        target = self.layer(layer)
        try:
            from rgruntime.semantic.cache import SemanticCache
            from rgruntime.semantic.embedder import make_embedder
            from rgruntime.semantic.layer_index import LayerSemanticIndex
        except ImportError as error:  # tests/test_missing_extras.py hides the extra
            # Not rgruntime.semantic.errors: importing it imports numpy again.
            from rgruntime.extras import MissingExtraError, missing_packages

            missing = missing_packages("semantic") or (str(error.name),)
            raise MissingExtraError("semantic", "semantic caching", missing) from error
        # Indexed by the name given (a registered name, or the embedder's own): a second use
        # must not load the model again just to learn its name.
        name = embedder if isinstance(embedder, str) else embedder.name
        known = self._semantic.get((layer, name))
        if known is not None and (not options or options == known[1]):
            return known[0]  # running already: no lock to take (every semantic lookup asks)
        if self._semantic_lock is None:
            self._semantic_lock = anyio.Lock()
        async with self._semantic_lock:  # two first uses must not start two indices
            known = self._semantic.get((layer, name))
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
            await supervisor.start_service(cache.run, f"rgruntime semantic index {layer}")
            index = LayerSemanticIndex(target, cache)
            self._semantic[(layer, name)] = (index, dict(options))
            return index

    def semantic_stats(self) -> dict[str, SemanticStats]:
        """Each running semantic index's statistics (hit-similarity histogram included), by
        ``"<layer>:<embedder>"``."""
        self._require_supervisor()
        return {
            f"{layer}:{name}": index.stats() for (layer, name), (index, _) in self._semantic.items()
        }

    def stats(self) -> CacheStats:
        """Counters summed over all layers; each layer's own record is in ``.layers``."""
        layers = self._require_supervisor().layers
        return CacheStats.combine({name: layer.stats() for name, layer in layers.items()})

    def statistics(self) -> dict[str, LayerStatistics]:
        """Each layer actor's internals, by layer name."""
        layers = self._require_supervisor().layers
        return {name: layer.statistics() for name, layer in layers.items()}

    def _require_supervisor(self) -> Supervisor:
        if self._state is not _State.OPEN or self._supervisor is None:
            raise RuntimeClosedError(f"the runtime is {self._state.value}, not open")
        return self._supervisor


def open_runtime(config: RuntimeConfig | Mapping[str, Any] | None = None) -> Runtime:
    """A runtime for ``async with``: ``async with open_runtime({"max_size": "100MB"}) as rt:``."""
    return Runtime(config)


# -- the runtime of the current context ----------------------------------------------------------
#
# Which runtime a call made from anywhere (a ``@cache``-decorated tool) should use. In order:
#
# 1. the runtime set for the current context: ``async with open_runtime()`` (and so ``async with
#    ResonantGenesis()``) sets it for the task that enters it and the tasks started from there,
#    an execution sets it for its agent's runner, and :func:`use_runtime` sets it explicitly;
# 2. otherwise, the only runtime open on this thread, if exactly one is (a blocking client's
#    calls run in tasks of its portal, which do not inherit the context that opened it).
#
# Two runtimes open on the same thread and no context choosing one: no runtime (the caller
# raises a clear error rather than guess).

_current: ContextVar[Runtime | None] = ContextVar("rgruntime_runtime", default=None)
# Open runtimes and the thread each runs on (weak: a runtime never closed must not be kept).
_open: weakref.WeakKeyDictionary[Runtime, int] = weakref.WeakKeyDictionary()


def current_runtime() -> Runtime | None:
    """The runtime for a call made here and now, or None (see the module documentation)."""
    runtime = _current.get()
    if runtime is not None and runtime.is_open:
        return runtime
    thread = threading.get_ident()
    here = [
        runtime for runtime, owner in list(_open.items()) if owner == thread and runtime.is_open
    ]
    return here[0] if len(here) == 1 else None


@contextlib.contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Make ``runtime`` the current one for the code run in this block."""
    token = _current.set(runtime)
    try:
        yield runtime
    finally:
        _current.reset(token)


def _opened(runtime: Runtime) -> Token[Runtime | None]:
    """Called by ``Runtime.__aenter__``: ``runtime`` is open on this thread, and current here."""
    _open[runtime] = threading.get_ident()
    return _current.set(runtime)


def _closed(runtime: Runtime, token: Token[Runtime | None] | None) -> None:
    """Called by ``Runtime.__aexit__``."""
    _open.pop(runtime, None)
    if token is None:
        return
    # Closed from another context than the one that opened it: that context is going away (or
    # keeps a runtime that reports itself closed, which current_runtime() skips).
    with contextlib.suppress(ValueError):
        _current.reset(token)
