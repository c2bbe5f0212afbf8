"""Which runtime a call made from anywhere (a ``@cache``-decorated tool) should use.

In order:

1. the runtime set for the current context: ``async with open_runtime()`` (and so ``async with
   ResonantGenesis()``) sets it for the task that enters it and the tasks started from there, an
   execution sets it for its agent's runner, and :func:`use_runtime` sets it explicitly;
2. otherwise, the only runtime open on this thread, if exactly one is (a blocking client's calls
   run in tasks of its portal, which do not inherit the context that opened the runtime).

Two runtimes open on the same thread and no context choosing one: no runtime (the caller raises a
clear error rather than guess).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rgruntime.runtime.runtime import Runtime

__all__ = ["current_runtime", "use_runtime"]

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


def opened(runtime: Runtime) -> Token[Runtime | None]:
    """Called by ``Runtime.__aenter__``: ``runtime`` is open on this thread, and current here."""
    _open[runtime] = threading.get_ident()
    return _current.set(runtime)


def closed(runtime: Runtime, token: Token[Runtime | None] | None) -> None:
    """Called by ``Runtime.__aexit__``."""
    _open.pop(runtime, None)
    if token is None:
        return
    # Closed from another context than the one that opened it: that context is going away (or
    # keeps a runtime that reports itself closed, which current_runtime() skips).
    with contextlib.suppress(ValueError):
        _current.reset(token)
