"""The layer actor: the task that drives one layer's :class:`~rgruntime.runtime.keeper.Keeper`.

It shares the layer's :class:`~rgruntime.runtime.layer_state.LayerState` with the layer's public
face (:class:`~rgruntime.runtime.layer.Layer`) and owns the keeper (policy, indices, ghosts).
Its mailbox (:mod:`rgruntime.runtime._actor`) carries wake-ups from writers and three requests:

==============  ============================================  ===================================
request         sent by                                       answer
==============  ============================================  ===================================
``Maintain``    ``layer.cleanup()``, writers under            once a pass has run
                backpressure
``Invalidate``  ``layer.invalidate()``, the supervisor        live entries removed
``Clear``       ``layer.clear()``                             live entries removed
==============  ============================================  ===================================

Before each message, and whenever the earliest timer is due, it runs one maintenance pass.
Invalidations and clears remove entries in slices of at most
:data:`~rgruntime.runtime.keeper.SLICE_SECONDS` with a checkpoint between two, so a selection of
any size never stops the event loop for long; what was written after the request began is newer
than what it selected and stays. Loads run in a task group nested in the actor's task: they end
with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import anyio
import anyio.abc
import anyio.lowlevel

from rgruntime.errors import RuntimeClosedError
from rgruntime.runtime._actor import Mailbox, Request
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.budgets import BudgetReport
from rgruntime.runtime.entry import next_sequence
from rgruntime.runtime.keeper import Keeper
from rgruntime.runtime.layer_state import LayerState
from rgruntime.runtime.removals import RemovalReason

__all__ = ["LayerActor"]

#: Inbox capacity. Wake-ups are de-duplicated, so this bounds only concurrent requests.
_INBOX_SIZE: Final = 64


class _Maintain(Request[None]):
    __slots__ = ()


class _Invalidate(Request[int]):
    __slots__ = ("before", "selection")

    def __init__(self, selection: Selection) -> None:
        super().__init__()
        self.selection = selection
        #: Taken when the call is made: what is written after it is newer than the selection.
        self.before = next_sequence()


class _Clear(Request[int]):
    __slots__ = ("before", "reason")

    def __init__(self, reason: RemovalReason) -> None:
        super().__init__()
        self.before = next_sequence()
        self.reason: RemovalReason = reason


_LayerRequest = _Maintain | _Invalidate | _Clear


class LayerActor:
    """Drives one layer's keeper (see the module documentation)."""

    def __init__(self, state: LayerState) -> None:
        self._state = state
        self.keeper = Keeper(state)
        self._mailbox: Mailbox[_LayerRequest] = Mailbox(f"cache layer {state.name!r}", _INBOX_SIZE)

    # -- the callers' side -------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask for a maintenance pass soon. Never suspends; repeated calls queue one wake-up."""
        self._mailbox.wake()

    async def maintained(self) -> None:
        """Return once a maintenance pass has run after this call."""
        await self._mailbox.ask(_Maintain())

    async def invalidate(self, selection: Selection) -> int:
        return await self._mailbox.ask(_Invalidate(selection))

    async def clear(self, reason: RemovalReason = "cleared") -> int:
        return await self._mailbox.ask(_Clear(reason))

    def inbox_depth(self) -> int:
        return self._mailbox.depth()

    def budget_report(self, minimum: int) -> BudgetReport:
        return self.keeper.budget_report(minimum)

    def set_max_size(self, size: int) -> None:
        """A new byte budget (from the supervisor); a smaller one is enforced at the next pass."""
        if self.keeper.set_max_size(size):
            self.wake()

    # -- the actor's task --------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; loads run in a task group nested here and end with the actor."""
        try:
            async with anyio.create_task_group() as service:
                self._state.service = service
                task_status.started()
                await self._serve()
        finally:
            self._state.close()
            self._mailbox.close()

    async def _serve(self) -> None:
        keeper = self.keeper
        clock = self._state.clock
        while True:
            message = await self._mailbox.receive(clock.to_backend(keeper.next_deadline()))
            while keeper.maintain():
                await anyio.lowlevel.checkpoint()  # expiry is behind: let others run between
            if message is not None:
                try:
                    await self._handle(message)
                except BaseException:
                    # Cancelled between two slices (the runtime is closing): whoever asked hears
                    # it now rather than never.
                    message.fail(RuntimeClosedError(f"cache layer {self._state.name!r} closed"))
                    raise

    async def _handle(self, request: _LayerRequest) -> None:
        if isinstance(request, _Invalidate):
            self._discard_loads(request.selection)
            self.keeper.drop_stale(request.selection)
            keys = self.keeper.selected(request.selection)
            request.answer(await self._remove_all(keys, "invalidated", request.before))
        elif isinstance(request, _Clear):
            self._discard_loads(None)
            self.keeper.drop_stale(None)
            keys = self.keeper.all_keys()
            request.answer(await self._remove_all(keys, request.reason, request.before))
        else:
            request.answer(None)

    async def _remove_all(self, keys: Iterator[str], reason: RemovalReason, before: int) -> int:
        """Remove what ``keys`` names and was written before sequence ``before``, a slice at a
        time; the live entries removed."""
        removed = 0
        while True:
            live, finished = self.keeper.remove_slice(keys, reason, before)
            removed += live
            if finished:
                return removed
            await anyio.lowlevel.checkpoint()

    def _discard_loads(self, selection: Selection | None) -> None:
        """Loads in flight that the request selects keep their results out of the cache."""
        for load in list(self._state.loads.values()):
            if selection is None or selection.matches(load.key, load.tags):
                load.discarded = True
                load.detach()
