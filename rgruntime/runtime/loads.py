"""Single-flight loads: one loader call per missing key, however many callers wait for it.

A load runs in its layer's service task group, not in the task of the caller who started it, so
that caller may be cancelled without cancelling the load for the others. Waiters are counted: the
load is cancelled when the last one leaves. Loads record which other loads their loader waits for,
so a cycle (a loader asking, directly or through other loads, for its own key) raises
:class:`~rgruntime.LoaderRecursionError` instead of deadlocking.

When a loader fails, each waiter raises its own copy of the loader's exception, chained to it
(``__cause__``). Raising one shared object from every waiter would grow its traceback by the
frames of each waiter in turn: with 1,000 waiters the last traceback ran to 10,000 lines.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio

from rgruntime.errors import LoaderRecursionError, LoadFailedError

__all__ = ["Load", "copy_exception", "current_load"]

Loader = Callable[[], Awaitable[Any]]

# The load whose loader the current task is running, if any (set in the load's own task).
current_load: ContextVar[Load | None] = ContextVar("rgruntime_current_load", default=None)


class Load:
    """A load in flight for one key of one layer."""

    __slots__ = (
        "_registry",
        "discarded",
        "done",
        "error",
        "found_elsewhere",
        "key",
        "layer_name",
        "loader",
        "scope",
        "stale_error",
        "tags",
        "ttl",
        "value",
        "waiters",
        "waiting_on",
    )

    def __init__(
        self,
        layer_name: str,
        key: str,
        loader: Loader,
        ttl: float | None,
        tags: frozenset[str],
        registry: dict[str, Load],
    ) -> None:
        self.layer_name = layer_name
        self.key = key
        self.loader = loader
        self.ttl = ttl
        self.tags = tags
        self._registry = registry
        # Created here, entered by the load's task: cancelling before the task starts still works.
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiters = 0
        #: Set when an invalidation or a write lands during the load: its result is not stored.
        self.discarded = False
        self.waiting_on: set[Load] = set()
        #: The loader's error when the load was answered with a stale copy instead.
        self.stale_error: BaseException | None = None
        #: Set when the value was found in the layer's remote store: a hit, not a load.
        self.found_elsewhere = False
        registry[key] = self

    def detach(self) -> None:
        """Let later callers start a fresh load; the current waiters keep waiting for this one."""
        if self._registry.get(self.key) is self:
            del self._registry[self.key]

    def finish(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error
        self.detach()
        self.done.set()

    async def wait(self) -> Any:
        """Wait for the result as one more waiter; leaving early may cancel the load."""
        waiter_load = current_load.get()
        if waiter_load is not None:
            cycle = self._path_to(waiter_load)
            if cycle is not None:
                chain = tuple((load.layer_name, load.key) for load in cycle)
                raise LoaderRecursionError(self.layer_name, self.key, chain)
            waiter_load.waiting_on.add(self)
        self.waiters += 1
        try:
            await self.done.wait()
        finally:
            self.waiters -= 1
            if waiter_load is not None:
                waiter_load.waiting_on.discard(self)
            if self.waiters == 0 and not self.done.is_set():
                self.detach()
                self.scope.cancel()
        if self.error is not None:
            raise self._error_for_waiter(self.error)
        return self.value

    def _error_for_waiter(self, error: BaseException) -> BaseException:
        """An exception of its own for one waiter: its traceback starts empty, however many
        waiters raised before it, and the loader's exception (with the loader's frames) is its
        ``__cause__``."""
        waiter_error = copy_exception(error)
        if waiter_error is None:
            waiter_error = LoadFailedError(self.layer_name, self.key, error)
        waiter_error.__cause__ = error  # this also hides __context__ when a traceback is shown
        waiter_error.__context__ = error
        return waiter_error

    def _path_to(self, target: Load) -> list[Load] | None:
        """The chain of loads from this one to ``target`` along "waits for" edges, if any."""
        stack: list[tuple[Load, list[Load]]] = [(self, [self])]
        seen: set[Load] = set()
        while stack:
            load, path = stack.pop()
            if load is target:
                return path
            if load in seen:
                continue
            seen.add(load)
            stack.extend((next_load, [*path, next_load]) for next_load in load.waiting_on)
        return None


def copy_exception(error: BaseException) -> BaseException | None:
    """A shallow copy of ``error`` (same type, args and attributes, no traceback), or None.

    ``copy.copy`` rebuilds an exception as ``type(error)(*error.args)``, which fails (or builds a
    different message) for a class whose ``__init__`` takes other arguments than its ``args``;
    such an exception is made with ``__new__`` and given the original's attributes instead.
    """
    kind = type(error)
    try:
        clone = copy.copy(error)
    except Exception:
        clone = None
    if type(clone) is not kind or clone is error:
        try:
            clone = kind.__new__(kind, *error.args)
            clone.__dict__.update(vars(error))
        except Exception:
            return None
    try:
        clone.args = error.args  # the message the loader raised, whatever __init__ made of it
        notes = getattr(error, "__notes__", None)
        if isinstance(notes, list):
            clone.__notes__ = list(notes)  # a note added by one waiter is not seen by the others
        clone.__traceback__ = None
    except Exception:
        return None
    return clone
