"""Gathering the concurrent requests of one scheduling round into one call to the server.

With many tasks reading a store, most of a request's cost in this process is the client library's
own work per command (valkey-glide: building the request, crossing into its Rust core, resolving
a future), not the server. :class:`Coalescer` sends the requests that tasks make in the same
round of the event loop as one command (``MGET`` for reads; one script for writes), as ioredis'
auto-pipelining does. A caller with nothing else in flight sends its request at once (alone, it
would only wait). Otherwise the first caller of a round waits one scheduling round (a
checkpoint), the callers that arrive meanwhile join its batch, then the first caller sends the
batch and every caller gets its own answer. ``python -m benchmarks distributed`` measures what
it buys (docs/stores.md).

What a caller sees is what it would see alone: its answer, or an error of its own when the batch
failed. A batch being sent is shielded from its sender's cancellation (the other callers' answers
depend on it; the store's request timeout bounds it): a cancelled sender raises its cancellation
once the batch is answered. A caller cancelled while it waits for a batch just leaves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

import anyio
import anyio.lowlevel

from rgruntime.stores.errors import StoreError, StoreUnavailableError

__all__ = ["MAX_BATCH", "Coalescer", "failure_of"]

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Requests per batch at most (a larger round starts another batch): bounds one command's size.
MAX_BATCH: Final = 512


class _Batch(Generic[Item, Result]):
    __slots__ = ("done", "failure", "items", "results")

    def __init__(self, first: Item) -> None:
        self.items: list[Item] = [first]
        self.done = anyio.Event()
        self.results: Sequence[Result] = ()
        self.failure: BaseException | None = None


class Coalescer(Generic[Item, Result]):
    """Batches of concurrent requests, sent by ``send`` (see the module documentation).

    ``send(items)`` answers a batch with one result per item, in order. ``failed(error)`` makes
    the error a waiting caller raises when ``send`` raised ``error`` (each caller raises its own
    exception object; the sender raises ``error`` itself).
    """

    __slots__ = ("_failed", "_in_flight", "_max_batch", "_open", "_send")

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        failed: Callable[[BaseException], BaseException],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: {max_batch!r} is not accepted; expected at least 1")
        self._send = send
        self._failed = failed
        self._max_batch = max_batch
        self._open: _Batch[Item, Result] | None = None
        #: Requests being sent (alone or in a batch); while there are some, callers gather.
        self._in_flight = 0

    async def submit(self, item: Item) -> Result:
        """``item``'s result, sent in one batch with the other requests of this round."""
        batch = self._open
        if batch is not None:
            index = len(batch.items)
            batch.items.append(item)
            if index + 1 >= self._max_batch:
                self._open = None  # full: the next caller starts another
            await batch.done.wait()
            if batch.failure is not None:
                raise self._failed(batch.failure) from batch.failure
            return batch.results[index]
        if not self._in_flight:
            # Nothing else is in flight: no one to wait for (a round costs a trip through the
            # event loop). Callers that come while this one is in flight gather into a batch.
            self._in_flight += 1
            try:
                return (await self._send([item]))[0]
            finally:
                self._in_flight -= 1
        batch = self._open = _Batch(item)
        # Let the other tasks of this round join; not a cancellation point, so that a batch
        # others joined is always sent.
        await anyio.lowlevel.cancel_shielded_checkpoint()
        if self._open is batch:
            self._open = None
        self._in_flight += 1
        with anyio.CancelScope(shield=True):
            try:
                batch.results = await self._send(batch.items)
            except BaseException as error:
                batch.failure = error
                raise
            finally:
                self._in_flight -= 1
                batch.done.set()
        await anyio.lowlevel.checkpoint_if_cancelled()
        return batch.results[0]


def failure_of(store: str, operation: str) -> Callable[[BaseException], StoreError]:
    """The ``failed`` of a store's coalescer: a waiting caller's own copy of what the batch's
    sender raised (the first of a group: a cluster's buckets are sent in parallel)."""

    def failed(error: BaseException) -> StoreError:
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        if isinstance(error, StoreUnavailableError):
            return StoreUnavailableError(store, operation, error.reason)
        if isinstance(error, StoreError):
            return StoreError(str(error))
        return StoreUnavailableError(store, operation, f"the batch's sender failed: {error!r:.200}")

    return failed
