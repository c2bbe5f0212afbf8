"""Closing a task group whose tasks run until cancelled (actors, schedules, handlers)."""

from __future__ import annotations

from types import TracebackType

import anyio.abc

__all__ = ["close_cancelled"]


async def close_cancelled(
    group: anyio.abc.TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    traceback: TracebackType | None,
) -> bool | None:
    """Cancel ``group``'s tasks and leave it (its ``__aexit__``) once they have all ended.

    A task group reports an exception raised in its ``async with`` body inside an exception
    group. The body's exception is the caller's own: it leaves unchanged (returning False
    re-raises it) instead of wrapped in a group of one.
    """
    group.cancel_scope.cancel()
    try:
        return await group.__aexit__(exc_type, exc, traceback)
    except BaseExceptionGroup as raised:
        if exc is not None and len(raised.exceptions) == 1 and raised.exceptions[0] is exc:
            return False
        raise
