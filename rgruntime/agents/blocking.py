"""A blocking client for scripts and notebooks: the guide's examples without ``await``.

``rgruntime.connect(...)`` runs an event loop in a worker thread (anyio's blocking portal) and
opens a :class:`ResonantGenesis` in it. Every method of every namespace is then called through
the portal: it runs on the loop's thread and the calling thread waits for its result. Close the
client (``with rgruntime.connect() as client:`` or ``client.close()``) to stop the runtime and
the thread.

**Code running on the client's loop** (event handlers, agent runners, tools) cannot wait for
the loop it runs on: there, the namespaces are the async client's, and an async method returns
its coroutine to await. So the guide's handler works unchanged on a blocking client:

```python
@client.events.on("data.updated")
async def invalidate_cache(event):
    await client.cache.invalidate(tags=[event.data_type])
```

``client.events.on(...)`` (and every other registration) runs on the loop too, as everything
that changes the client's state does.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from rgruntime.agents.events import EventHandler

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis

H = TypeVar("H", bound=EventHandler)
T = TypeVar("T")

__all__ = ["BlockingClient", "connect"]


class _BlockingNamespace:
    """Calls each method of ``target`` through the portal; other attributes pass through.

    On the portal's own loop thread a method is called as it is (an async one returns its
    coroutine): a portal call from there could only fail, the loop being busy running the caller.
    """

    def __init__(self, portal: BlockingPortal, target: Any, loop_thread: int) -> None:
        self._portal = portal
        self._target = target
        self._loop_thread = loop_thread

    def _on_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        portal = self._portal

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._on_loop():
                return attribute(*args, **kwargs)
            if inspect.isasyncgenfunction(attribute):
                return _iterate(portal, attribute(*args, **kwargs))
            return portal.call(functools.partial(attribute, *args, **kwargs))

        return call

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


class _BlockingEvents(_BlockingNamespace):
    """``client.events``: as the other namespaces, and ``on`` registers through the portal.

    ``EventBus.on(name)`` returns a decorator; called in the caller's thread, it would change
    the bus (and the layers' removal listeners) off the loop, racing the loop's own reads.
    """

    def on(self, event: str) -> Callable[[H], H]:
        if self._on_loop():
            return self._target.on(event)  # type: ignore[no-any-return]
        register = self._portal.call(self._target.on, event)  # the name is checked here

        def decorator(handler: H) -> H:
            self._portal.call(register, handler)
            return handler

        return decorator


def _iterate(portal: BlockingPortal, generator: AsyncGenerator[Any, None]) -> Iterator[Any]:
    """An async generator (``models.stream``) consumed from the calling thread, item by item."""
    try:
        while True:
            try:
                yield portal.call(generator.__anext__)
            except StopAsyncIteration:
                return
    finally:
        portal.call(generator.aclose)


class _LoopThread:
    """An event loop in a daemon thread, reached through a blocking portal.

    A daemon thread, unlike ``anyio.from_thread.start_blocking_portal``'s pool thread: a script
    that never closes its client (the guide's ``client = ResonantGenesis(...)``) must still
    exit. The interpreter would otherwise wait forever for the loop's thread before running the
    ``atexit`` hook that closes the client.
    """

    def __init__(self, backend: str) -> None:
        self._ready = threading.Event()
        self._portal: BlockingPortal | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(backend,), name="rgruntime-client", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    @property
    def portal(self) -> BlockingPortal:
        assert self._portal is not None
        return self._portal

    def _run(self, backend: str) -> None:
        try:
            anyio.run(self._serve, backend=backend)
        except BaseException as error:  # reported to the thread that started the loop
            self._error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        async with BlockingPortal() as portal:
            self._portal = portal
            self._ready.set()
            await portal.sleep_until_stopped()

    def stop(self) -> None:
        if self._thread.is_alive() and self._portal is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._portal.call(self._portal.stop)
        self._thread.join()


#: Blocking clients still open: closed when the interpreter exits (their runtime's actors and
#: model providers end properly, as they do when the client is closed by hand).
_OPEN: weakref.WeakSet[BlockingClient] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_OPEN):
        with contextlib.suppress(Exception):
            client.close()


class BlockingClient:
    """The blocking twin of :class:`ResonantGenesis` (same namespaces, no ``await``)."""

    def __init__(self, factory: Callable[[], ResonantGenesis], *, backend: str = "asyncio") -> None:
        self._stack = contextlib.ExitStack()
        try:
            loop = _LoopThread(backend)
            self._stack.callback(loop.stop)
            portal = loop.portal
            client = self._stack.enter_context(portal.wrap_async_context_manager(factory()))
        except BaseException:
            self._stack.close()
            raise
        _OPEN.add(self)
        self._portal = portal
        self._client = client
        loop_thread = portal.call(threading.get_ident)
        self.agents = _BlockingNamespace(portal, client.agents, loop_thread)
        self.sessions = _BlockingNamespace(portal, client.sessions, loop_thread)
        self.cache = _BlockingNamespace(portal, client.cache, loop_thread)
        self.tools = _BlockingNamespace(portal, client.tools, loop_thread)
        self.models = _BlockingNamespace(portal, client.models, loop_thread)
        self.memory = _BlockingNamespace(portal, client.memory, loop_thread)
        self.alerts = _BlockingNamespace(portal, client.alerts, loop_thread)
        # Handlers registered here are async functions; they run on the client's event loop.
        self.events = _BlockingEvents(portal, client.events, loop_thread)

    def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await function(*args)`` on the client's event loop; returns its result.

        For async code the guide writes at the top level (``await client.memory.preload(...)``,
        ``async def warm_cache(): ...``): on the loop, the namespaces are the async client's.
        """
        return self._portal.call(function, *args)

    def serve_api(self, host: str = "127.0.0.1", port: int = 8000, *, tokens: Any = None) -> Any:
        """:meth:`ResonantGenesis.serve_api`: the HTTP API, served until the client closes."""
        return self._portal.call(
            functools.partial(self._client.serve_api, host, port, tokens=tokens)
        )

    def close(self) -> None:
        """Stop the runtime and the event loop thread (idempotent)."""
        _OPEN.discard(self)
        self._stack.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect(*args: Any, backend: str = "asyncio", **kwargs: Any) -> BlockingClient:
    """Open a blocking client: ``client = rgruntime.connect(cache_config={...})``.

    Takes :class:`ResonantGenesis`'s arguments, plus ``backend`` (``"asyncio"`` or ``"trio"``)
    for the event loop that runs in the background thread.
    """
    from rgruntime.agents.client import ResonantGenesis

    return BlockingClient(lambda: ResonantGenesis(*args, **kwargs), backend=backend)
