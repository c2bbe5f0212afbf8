"""The client's own task group: event handlers and warming schedules run in it.

The client opens it inside its runtime and closes it first, so nothing it runs outlives the
runtime (or sees the layers closed under it). Closing cancels what is still running and returns
once all of it has ended. As with the runtime, an exception raised in the body of ``async with
ResonantGenesis()`` leaves the block unchanged, not wrapped in an exception group.
"""

from __future__ import annotations

from types import TracebackType

import anyio
import anyio.abc

from rgruntime._taskgroups import close_cancelled

__all__ = ["ServiceGroup"]


class ServiceGroup:
    """``async with ServiceGroup() as group:``: an anyio task group cancelled on exit."""

    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> anyio.abc.TaskGroup:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        return group

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        # Its tasks (schedules, handlers) would run forever: closing is cancelling.
        return await close_cancelled(self._group, exc_type, exc, traceback)
