"""A blocking client for scripts and notebooks: the guide's examples without ``await``.

``rgruntime.connect(...)`` runs an event loop in a worker thread (anyio's blocking portal) and
opens a :class:`ResonantGenesis` in it. Every method of every namespace is then called through
the portal: it runs on the loop's thread and the calling thread waits for its result. Close the
client (``with rgruntime.connect() as client:`` or ``client.close()``) to stop the runtime and
the thread.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis

__all__ = ["BlockingClient", "connect"]


class _BlockingNamespace:
    """Calls each method of ``target`` through the portal; other attributes pass through."""

    def __init__(self, portal: BlockingPortal, target: Any) -> None:
        self._portal = portal
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        portal = self._portal

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            if inspect.isasyncgenfunction(attribute):
                return _iterate(portal, attribute(*args, **kwargs))
            return portal.call(functools.partial(attribute, *args, **kwargs))

        return call

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


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


class BlockingClient:
    """The blocking twin of :class:`ResonantGenesis` (same namespaces, no ``await``)."""

    def __init__(self, factory: Callable[[], ResonantGenesis], *, backend: str = "asyncio") -> None:
        self._stack = contextlib.ExitStack()
        try:
            portal = self._stack.enter_context(start_blocking_portal(backend))
            client = self._stack.enter_context(portal.wrap_async_context_manager(factory()))
        except BaseException:
            self._stack.close()
            raise
        self._portal = portal
        self._client = client
        self.agents = _BlockingNamespace(portal, client.agents)
        self.sessions = _BlockingNamespace(portal, client.sessions)
        self.cache = _BlockingNamespace(portal, client.cache)
        self.tools = _BlockingNamespace(portal, client.tools)
        self.models = _BlockingNamespace(portal, client.models)
        self.memory = _BlockingNamespace(portal, client.memory)
        # Handlers registered here are async functions; they run on the client's event loop.
        self.events = _BlockingNamespace(portal, client.events)

    def close(self) -> None:
        """Stop the runtime and the event loop thread (idempotent)."""
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
