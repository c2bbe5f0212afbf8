"""The runtime: a supervisor and its layer actors, living inside one task group.

``async with open_runtime(config) as runtime:`` starts them; leaving the block cancels them all
(loads in flight included) and returns once every task has ended. Nothing starts at import time,
and nothing binds to an event loop before the block is entered.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any, Final

import anyio
import anyio.abc

from rgruntime._taskgroups import close_cancelled
from rgruntime.config import Backend, LayerConfig, RuntimeConfig
from rgruntime.errors import (
    ConfigError,
    InvalidArgumentError,
    LayerNotFoundError,
    RuntimeClosedError,
)
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.clock import LoopClock, backend_clock
from rgruntime.runtime.coherence import follow_invalidations
from rgruntime.runtime.dependencies import DependencyGraph
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.remote_layer import RemoteLayer
from rgruntime.runtime.snapshot import SnapshotReport, load_snapshot, save_snapshot
from rgruntime.runtime.stats import CacheStats, LayerStatistics
from rgruntime.runtime.store_link import SharedStore, StoreLink
from rgruntime.runtime.supervisor import Supervisor
from rgruntime.stores.base import RemoteStore
from rgruntime.stores.config import make_store
from rgruntime.stores.serialization import CodecRegistry, Serializer

__all__ = [
    "Runtime",
    "current_runtime",
    "install_api_serving",
    "open_runtime",
    "use_runtime",
]

#: What serves the HTTP API over a runtime: installed by the package root (rgruntime/__init__.py
#: wires rgruntime.api in), so that the runtime imports nothing above it.
ApiServing = Callable[..., Coroutine[Any, Any, Any]]
_api_serving: list[ApiServing] = []


def install_api_serving(serve: ApiServing) -> None:
    """Make ``runtime.serve_api(...)`` call ``serve(runtime, host, port, tokens=...)``."""
    _api_serving[:] = [serve]


#: Seconds a closing runtime gives its remote layers' queued writes to reach their stores.
FLUSH_ON_CLOSE: Final = 5.0


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
        #: What the ``persist`` file put back when the runtime opened (None: no file yet).
        self.last_restore: SnapshotReport | None = None
        #: How values that are not JSON-like are saved (warm restarts) and sent to remote
        #: stores: register your classes.
        self.codecs = CodecRegistry()
        # The remote stores, opened with the runtime (by backend) and closed after its tasks.
        self._stores: dict[object, SharedStore] = {}
        self._store_stack = contextlib.AsyncExitStack()

    def __repr__(self) -> str:
        return f"<Runtime {self._state.value} layers={list(self.config.layers)}>"

    async def __aenter__(self) -> Runtime:
        if self._state is not _State.NEW:
            raise RuntimeError(f"this Runtime is {self._state.value}; a Runtime opens only once")
        self._state = _State.OPEN
        clock = backend_clock()
        try:
            await self._open_stores(clock)
        except BaseException:
            self._state = _State.CLOSED
            with anyio.CancelScope(shield=True):
                await self._store_stack.aclose()
            raise
        self._supervisor = Supervisor(
            dict(self.config.layers),
            clock,
            self.config.rebalance_interval,
            link_for=self._link_for,
        )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self._supervisor.run, name="rgruntime supervisor")
            for shared in self._stores.values():
                if shared.has_channel:
                    await self._supervisor.start_service(
                        functools.partial(follow_invalidations, shared, self._supervisor.layers),
                        f"rgruntime coherence {shared.description}",
                    )
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
            try:
                await task_group.__aexit__(type(error), error, error.__traceback__)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._store_stack.aclose()
            raise
        self._task_group = task_group
        self._current_token = _opened(self)
        persist = self.config.persist
        if persist is not None and await anyio.Path(persist).exists():
            try:
                self.last_restore = await self.load(persist)
            except BaseException as error:
                await self.__aexit__(type(error), error, error.__traceback__)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._state is _State.OPEN:
            # Shielded: a cancelled close still keeps the entries and delivers queued writes.
            with anyio.CancelScope(shield=True):
                if self.config.persist is not None:
                    await self.save(self.config.persist)
                await self._flush_stores()
        self._state = _State.CLOSED
        _closed(self, self._current_token)
        assert self._task_group is not None
        try:
            return await close_cancelled(self._task_group, exc_type, exc, traceback)
        finally:
            with anyio.CancelScope(shield=True):
                await self._store_stack.aclose()

    # -- remote stores -------------------------------------------------------------------------

    async def _open_stores(self, clock: LoopClock) -> None:
        """Open every store a layer (or the runtime's default) names, once per backend."""
        backends: list[Backend] = [self.config.cache_backend]
        backends += [layer.cache_backend for layer in self.config.layers.values()]
        serializer = Serializer(self.codecs)
        for backend in backends:
            if backend is None or backend in self._stores:
                continue
            store = backend if isinstance(backend, RemoteStore) else make_store(backend)
            await self._store_stack.enter_async_context(store)
            await store.ping()  # a server that is not there fails the open, not a later call
            self._stores[backend] = SharedStore(store, serializer, clock)

    def _link_for(self, config: LayerConfig) -> StoreLink | None:
        backend = config.cache_backend
        if backend is None:
            return None
        shared = self._stores.get(backend)
        if shared is None:
            raise ConfigError(
                f"layers.{config.name}.cache_backend",
                backend,
                "a backend the runtime opened with (its own cache_backend or a layer's)",
            )
        return StoreLink(shared, config)

    async def _flush_stores(self) -> None:
        """Give queued writes a bounded time to reach their stores before the runtime stops."""
        if self._supervisor is None:
            return
        remote = [
            layer for layer in self._supervisor.layers.values() if isinstance(layer, RemoteLayer)
        ]
        with anyio.move_on_after(FLUSH_ON_CLOSE):
            for layer in remote:
                with contextlib.suppress(RuntimeClosedError):
                    await layer.link.flush()
        for layer in remote:  # never lost silently: said, with how many
            layer.link.warn_if_left()

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

    @property
    def dependencies(self) -> DependencyGraph:
        """The dependency graph: which cached entries were computed from which."""
        return self._dependencies

    async def save(self, path: str | os.PathLike[str]) -> SnapshotReport:
        """Write every live entry to ``path`` for a warm restart (atomically; see
        :mod:`rgruntime.runtime.snapshot`)."""
        layers = self._require_supervisor().layers
        return await save_snapshot(layers, path, Serializer(self.codecs))

    async def load(self, path: str | os.PathLike[str]) -> SnapshotReport:
        """Put back the entries :meth:`save` wrote to ``path``, with the TTL they had left."""
        layers = self._require_supervisor().layers
        return await load_snapshot(layers, path, Serializer(self.codecs))

    async def start_service(
        self, function: Callable[..., Coroutine[Any, Any, Any]], name: str
    ) -> None:
        """Start ``await task_group.start(function)`` in the task group of the layers.

        ``function`` must accept ``task_status`` and report itself started; it is cancelled
        when the runtime closes, with the layers (the semantic indices and the analysis actors
        are started this way). A function that fails to start raises here, and the runtime goes
        on.
        """
        await self._require_supervisor().start_service(function, name)

    async def serve_api(
        self, host: str = "127.0.0.1", port: int = 8000, *, tokens: Any = None
    ) -> Any:
        """Serve the HTTP API (``rgruntime.api``, the ``api`` extra) in the runtime's task group
        until it closes; returns an :class:`~rgruntime.api.ApiServer` (``.url``).

        A bare runtime answers stats, invalidation, entries, key listings, ``/metrics`` and
        ``/healthz``; what needs the guide's client (warming agents, savings, metric series,
        analysis, diagnosis, alerts) answers 404 or 501 saying so: use ``client.serve_api``
        for those. ``tokens``: ``[Token(value, "read" | "admin")]`` or ``{value: scope}``;
        without any, only a loopback host is accepted.
        """
        self._require_supervisor()
        (serve,) = _api_serving
        return await serve(self, host, port, tokens=tokens)

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
