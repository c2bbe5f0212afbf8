"""Events: ``@client.events.on("data.updated")``, ``await client.events.emit("data.updated")``.

The caching guide's event-based invalidation:

```python
@client.events.on("data.updated")
async def invalidate_cache(event):
    await client.cache.invalidate(tags=[event.data_type])

await client.events.emit("data.updated", data_type="products")  # returns once handlers ran
```

**Where handlers run.** In the bus's task group, which the client opens inside its runtime and
closes before it: never in the emitter's task and never fire-and-forget. A handler outlives
neither the client nor the runtime, and an emitter that is cancelled does not cancel handlers
already started (they belong to the bus, as a layer's loads belong to the layer).

**What ``emit`` waits for.** ``await emit(...)`` returns once every handler registered for the
event when it was emitted has finished (or failed): the guide's example expects the invalidation
done when ``emit`` returns. ``emit_nowait`` queues the event and returns at once; it is what the
runtime uses where it must not suspend (a key evicted inside a layer's maintenance pass) or must
not wait (a cache hit). Events with no handler cost one dictionary lookup and are not queued.

**Order.** Handlers run concurrently, each in a task of its own: an event's handlers in no
promised order, and the handlers of two queued events may interleave. Whoever needs an order
awaits ``emit`` (the next event is emitted once the previous one's handlers are done).

**Failures.** A handler that raises is logged (logger ``rgruntime.events``) and counted
(``stats().failures``, per event name in ``stats().failures_by_event``); the other handlers, the
emitter and the runtime go on.

**Built-in events** (their data as keyword attributes):

- ``cache.hit`` / ``cache.miss``: an ``execute`` was answered from / not from the response
  cache (``layer="response"``, ``agent_id``, ``key``, ``goal``); a memory search from / not from
  a stored entry of the memory cache (``layer="memory"``, ``agent_id``, ``key``, ``query``). A
  memory search that waited for an identical one already running is a ``cache.miss`` with
  ``joined=True`` (it ran no lookup of its own; the one that ran says ``joined=False``): only
  an entry already stored makes a hit, as the layer's statistics count it;
- ``cache.evicted`` (the layer's policy removed a key to stay within its bounds, ``reason``
  ``evicted``; or an agent's ``max_entries`` trimmed its oldest entry, ``reason`` ``trimmed``),
  ``cache.expired`` (its TTL ran out), ``cache.invalidated`` (``invalidate``, ``clear`` or
  ``delete`` removed it): ``layer``, ``key``, ``reason``;
- ``agent.created`` / ``agent.updated`` / ``agent.deleted``: ``agent_id``, ``version``;
- ``tool.updated`` (``client.tools.update``, or ``register`` of a name already taken):
  ``tool`` (its name), ``version``;
- ``memory.added`` / ``memory.deleted``: ``agent_id``, ``memory_id``;
  ``memory.invalidated``: ``agent_id``, ``removed``; ``memory.preloaded``: ``agent_id``,
  ``result`` (a :class:`~rgruntime.PreloadResult`);
- ``session.created`` / ``session.updated`` (a turn ran, or a resume reset it) /
  ``session.deleted``: ``session_id``, ``agent_id``.

The ``cache.*`` events (and ``tool.updated`` from the synchronous ``register``) are queued
(``emit_nowait``); the other change events are awaited by the call
that made the change, after it released its locks, so that when ``await client.memory.add(...)``
returns its handlers have run.

Patterns: ``on("cache.*")`` hears every event whose name matches the glob, ``on("*")`` all.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

import anyio
import anyio.abc
import attrs

from rgruntime.errors import InvalidArgumentError, RuntimeClosedError

__all__ = ["Event", "EventBus", "EventHandler", "EventStats"]

logger = logging.getLogger("rgruntime.events")

#: ``async def handler(event)`` (a plain function is accepted too: it runs on the event loop).
EventHandler = Callable[["Event"], Awaitable[None] | None]
H = TypeVar("H", bound=EventHandler)

#: Queued events (``emit_nowait``) allowed to wait for their handlers at once; past it, queued
#: events are dropped and counted rather than growing without bound in an eviction storm.
DEFAULT_MAX_PENDING: Final = 10_000

#: Event names whose handlers are remembered at once (most programs use a few dozen).
_RESOLVED_LIMIT: Final = 4096


class _Watchable(Protocol):
    """A cache layer, as far as the bus is concerned: it reports the keys that leave it."""

    def add_removal_listener(
        self, listener: Callable[[str, str, Any], None]
    ) -> Callable[[], None]: ...


class Event:
    """One emitted event: ``name``, ``data`` (read-only) and ``timestamp`` (``time.time()``).

    The data are attributes too: ``event.data_type`` is ``event.data["data_type"]``.
    """

    __slots__ = ("data", "name", "timestamp")

    def __init__(self, name: str, data: Mapping[str, Any], timestamp: float | None = None) -> None:
        self.name = name
        self.data: Mapping[str, Any] = MappingProxyType(dict(data))
        self.timestamp = time.time() if timestamp is None else timestamp

    def __getattr__(self, attribute: str) -> Any:
        # Only called for names that are not slots: the event's data.
        try:
            return self.data[attribute]
        except KeyError:
            raise AttributeError(
                f"event {self.name!r} has no {attribute!r}; its data: {', '.join(self.data) or '-'}"
            ) from None

    def __repr__(self) -> str:
        data = ", ".join(f"{key}={value!r}" for key, value in self.data.items())
        return f"Event({self.name!r}{', ' if data else ''}{data})"


@attrs.frozen(kw_only=True)
class EventStats:
    """What the bus did since the client opened."""

    #: Events emitted that had at least one handler.
    emitted: int
    #: Handler calls that returned normally.
    delivered: int
    #: Handler calls that raised (logged).
    failures: int
    failures_by_event: Mapping[str, int]
    #: Queued events dropped because ``max_pending`` events were already waiting.
    dropped: int
    #: Queued events (``emit_nowait``) whose handlers have not all finished yet.
    pending: int
    #: Registered handlers (patterns included).
    handlers: int


class _Delivery:
    """One event on its way to its handlers; ``done`` is set when the last one finished."""

    __slots__ = ("done", "event", "queued", "remaining")

    def __init__(self, event: Event, handlers: int, queued: bool) -> None:
        self.event = event
        self.remaining = handlers
        self.queued = queued
        self.done = anyio.Event()


def _check_name(name: object, field: str = "event") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(field, name, "an event name such as 'data.updated'")
    return name


class EventBus:
    """``client.events``: register handlers, emit events (see the module documentation)."""

    def __init__(self, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidArgumentError("max_pending", max_pending, "a positive whole number")
        self._max_pending = max_pending
        self._exact: dict[str, list[EventHandler]] = {}
        self._patterns: list[tuple[str, EventHandler]] = []
        # Handlers by event name, resolved once per name (patterns included) until the
        # registrations change: emitting an event nobody listens to is one dict lookup.
        self._resolved: dict[str, tuple[EventHandler, ...]] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._pending = 0
        self._emitted = 0
        self._delivered = 0
        self._failures = 0
        self._failures_by_event: dict[str, int] = {}
        self._dropped = 0
        # Set (and dropped) when the last queued event's handlers finished: flush() waits on it.
        self._idle: anyio.Event | None = None
        # The client's layers, and the functions that unregister this bus's removal listener
        # from them: listening only while someone handles cache.evicted/expired/invalidated, so
        # that layers whose removals nobody listens to do not call the bus on every removal.
        self._layers: list[_Watchable] = []
        self._unwatch: list[Callable[[], None]] = []

    # -- registration ----------------------------------------------------------------------------

    def on(self, event: str) -> Callable[[H], H]:
        """Decorator: call the handler for every ``event`` emitted (a glob such as ``cache.*``
        matches many). Returns the handler unchanged, so one function may handle several."""
        name = _check_name(event)

        def register(handler: H) -> H:
            self.add_handler(name, handler)
            return handler

        return register

    def add_handler(self, event: str, handler: EventHandler) -> None:
        """:meth:`on` without the decorator."""
        name = _check_name(event)
        if not callable(handler):
            raise InvalidArgumentError("handler", handler, "an async function taking the event")
        if any(character in name for character in "*?["):
            self._patterns.append((name, handler))
        else:
            self._exact.setdefault(name, []).append(handler)
        self._resolved.clear()
        self._update_watch()

    def off(self, event: str, handler: EventHandler) -> bool:
        """Unregister ``handler`` for ``event``; True if it was registered."""
        name = _check_name(event)
        handlers = self._exact.get(name, [])
        if handler in handlers:
            handlers.remove(handler)
        elif (name, handler) in self._patterns:
            self._patterns.remove((name, handler))
        else:
            return False
        self._resolved.clear()
        self._update_watch()
        return True

    def has_handlers(self, event: str) -> bool:
        """Whether emitting ``event`` would call anything (cheap: callers test it first)."""
        return bool(self._handlers(event))

    def _handlers(self, name: str) -> tuple[EventHandler, ...]:
        handlers = self._resolved.get(name)
        if handlers is None:
            handlers = (
                *self._exact.get(name, ()),
                *(
                    handler
                    for pattern, handler in self._patterns
                    if fnmatch.fnmatchcase(name, pattern)
                ),
            )
            if len(self._resolved) >= _RESOLVED_LIMIT:
                self._resolved.clear()  # names are the caller's: never let them pile up
            self._resolved[name] = handlers
        return handlers

    # -- emitting --------------------------------------------------------------------------------

    async def emit(self, event: str, /, **data: Any) -> int:
        """Deliver ``event`` to its handlers; return, once they all finished, how many ran.

        Handler failures are logged and counted, never raised here. Raises
        :class:`~rgruntime.RuntimeClosedError` when the client is not open.
        """
        name = _check_name(event)
        group = self._require_group()
        handlers = self._handlers(name)
        if not handlers:
            return 0
        delivery = self._start(group, Event(name, data), handlers, queued=False)
        await delivery.done.wait()
        return len(handlers)

    def emit_nowait(self, event: str, /, **data: Any) -> bool:
        """Queue ``event`` for its handlers and return at once; never suspends.

        Returns False when nothing was queued: no handler, the client is not open, or
        ``max_pending`` queued events are still waiting (then it is counted in ``dropped``).
        """
        handlers = self._handlers(event)
        group = self._group
        if not handlers or group is None:
            return False
        if self._pending >= self._max_pending:
            self._dropped += 1
            return False
        self._start(group, Event(event, data), handlers, queued=True)
        return True

    def _start(
        self,
        group: anyio.abc.TaskGroup,
        event: Event,
        handlers: tuple[EventHandler, ...],
        *,
        queued: bool,
    ) -> _Delivery:
        delivery = _Delivery(event, len(handlers), queued)
        self._emitted += 1
        if queued:
            self._pending += 1
        for handler in handlers:
            group.start_soon(self._call, handler, delivery, name=f"event {event.name}")
        return delivery

    async def _call(self, handler: EventHandler, delivery: _Delivery) -> None:
        event = delivery.event
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._failures += 1
            self._failures_by_event[event.name] = self._failures_by_event.get(event.name, 0) + 1
            logger.exception("event handler %r failed on %r", handler, event)
        else:
            self._delivered += 1
        finally:
            # Also on cancellation (the client closing): the emitter must not wait forever.
            delivery.remaining -= 1
            if delivery.remaining == 0:
                if delivery.queued:
                    self._pending -= 1
                    if self._pending == 0 and self._idle is not None:
                        self._idle.set()
                        self._idle = None
                delivery.done.set()

    async def flush(self) -> None:
        """Wait until the handlers of every event queued so far (``emit_nowait``, the built-in
        ``cache.*`` events) have finished, and of those their handlers queued meanwhile."""
        while self._pending:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    # -- lifetime ----------------------------------------------------------------------------------

    def attach(self, group: anyio.abc.TaskGroup, layers: Iterable[_Watchable] = ()) -> None:
        """Deliver events in ``group`` (the client's, opened inside its runtime), and report
        the removals of ``layers`` while someone listens to them."""
        self._group = group
        self._layers = list(layers)
        self._update_watch()

    def detach(self) -> None:
        self._group = None
        self._layers = []
        self._update_watch()

    def _update_watch(self) -> None:
        wanted = bool(self._layers) and any(map(self._handlers, _REMOVAL_EVENTS.values()))
        if wanted and not self._unwatch:
            self._unwatch = [
                layer.add_removal_listener(self.removal_listener) for layer in self._layers
            ]
        elif not wanted and self._unwatch:
            for unwatch in self._unwatch:
                unwatch()
            self._unwatch = []

    @property
    def is_open(self) -> bool:
        """Whether events are delivered now (the client is open)."""
        return self._group is not None

    def _require_group(self) -> anyio.abc.TaskGroup:
        if self._group is None:
            raise RuntimeClosedError(
                "the client is not open: events are delivered inside "
                "`async with ResonantGenesis(...) as client:`"
            )
        return self._group

    def removal_listener(self, layer: str, key: str, reason: Any) -> None:
        """A layer's removal listener: ``cache.evicted``, ``cache.expired``,
        ``cache.invalidated`` (``invalidated``, ``cleared``, ``deleted``). Synchronous and
        quick (it runs inside the layer's maintenance pass): it only queues."""
        name = _REMOVAL_EVENTS.get(reason)
        if name is not None and self._group is not None and self._handlers(name):
            self.emit_nowait(name, layer=layer, key=key, reason=reason)

    # -- statistics --------------------------------------------------------------------------------

    def stats(self) -> EventStats:
        return EventStats(
            emitted=self._emitted,
            delivered=self._delivered,
            failures=self._failures,
            failures_by_event=MappingProxyType(dict(self._failures_by_event)),
            dropped=self._dropped,
            pending=self._pending,
            handlers=sum(map(len, self._exact.values())) + len(self._patterns),
        )


#: Removal reasons as events. A write that replaces a key's value is not a removal for users.
_REMOVAL_EVENTS: Final[Mapping[str, str]] = {
    "evicted": "cache.evicted",
    # An agent's max_entries: capacity pressure, as an eviction.
    "trimmed": "cache.evicted",
    "expired": "cache.expired",
    "invalidated": "cache.invalidated",
    "cleared": "cache.invalidated",
    "deleted": "cache.invalidated",
}
