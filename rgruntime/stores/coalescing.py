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

What a caller sees is what it would see alone:

- **its answer, or an error of its own.** A batch the server refused (a ``StoreError`` that is not
  an outage: one caller's value it will not take) is sent again one request at a time, so that
  a refusal reaches only the caller it concerns; so is a batch that met an outage, on a store of
  several servers (``retry_alone``: one dead node must not fail the keys of the live ones).
  Otherwise every caller raises its own copy of the error (``failed``).
- **cancellation.** The send is shielded from its sender's cancellation (the other callers'
  answers depend on it; the store's request timeout bounds it): a cancelled sender raises its
  cancellation once the batch is answered. A caller cancelled while it waits just leaves (a set
  it asked for is still written). When the sender is interrupted anyway (asyncio's own
  ``Task.cancel``, which an anyio shield does not hold, e.g. ``asyncio.timeout``), the callers
  waiting on its batch send their requests again: no caller waits on a batch that will never
  be answered.
- **order.** Batches are sent in the order they were opened. A command that does not go through
  the coalescer but must keep call order with the requests that do (a store's delete after a set
  another task asked for first, and before one asked for after it) runs inside
  :meth:`Coalescer.barrier`: it closes the batch gathering now, waits until every request asked
  for before it is answered, and holds the requests asked for meanwhile until it is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
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
    __slots__ = ("done", "epoch", "failure", "failures", "interrupted", "items", "results")

    def __init__(self, first: Item, epoch: int) -> None:
        #: How many barriers had started when it was opened: it waits for those still running.
        self.epoch = epoch
        self.items: list[Item] = [first]
        self.done = anyio.Event()
        self.results: list[Result | None] = []
        #: Why the whole batch failed; or, after it was sent again one request at a time, why
        #: each request that failed did (by position).
        self.failure: BaseException | None = None
        self.failures: dict[int, BaseException] = {}
        #: The sender was interrupted by a cancellation no shield holds (asyncio's own).
        self.interrupted = False


class Coalescer(Generic[Item, Result]):
    """Batches of concurrent requests, sent by ``send`` (see the module documentation).

    ``send(items)`` answers a batch with one result per item, in order. ``failed(error)`` makes
    the error a caller raises when the batch's ``send`` raised ``error`` (its own exception
    object). ``retry_alone``: after an outage, send each request of a failed batch again alone
    (a store of several servers). ``resend_interrupted``: when the sender is interrupted, the
    other callers send their requests again (reads); otherwise they fail (writes: sent again,
    they would land after the commands that came after them).
    """

    __slots__ = (
        "_barriers",
        "_barriers_started",
        "_failed",
        "_max_batch",
        "_open",
        "_resend_interrupted",
        "_retry_alone",
        "_send",
        "_unanswered",
    )

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        failed: Callable[[BaseException], BaseException],
        *,
        max_batch: int = MAX_BATCH,
        retry_alone: bool = False,
        resend_interrupted: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: {max_batch!r} is not accepted; expected at least 1")
        self._send = send
        self._failed = failed
        self._max_batch = max_batch
        self._retry_alone = retry_alone
        self._resend_interrupted = resend_interrupted
        #: The batch the callers of this round join (None: the next caller opens one).
        self._open: _Batch[Item, Result] | None = None
        #: Batches opened and not yet answered, in the order they were opened.
        self._unanswered: dict[_Batch[Item, Result], None] = {}
        #: Commands running inside :meth:`barrier`, by number, with the event that ends each: a
        #: batch opened while one runs waits for it; the barrier waits for the batches opened
        #: before it (so neither ever waits for the other).
        self._barriers: dict[int, anyio.Event] = {}
        self._barriers_started = 0

    async def submit(self, item: Item) -> Result:
        """``item``'s result, sent in one batch with the other requests of this round."""
        joined = self._open
        if joined is not None:
            index = len(joined.items)
            joined.items.append(item)
            if index + 1 >= self._max_batch:
                self._open = None  # full: the next caller starts another
            await joined.done.wait()
            if joined.interrupted and self._resend_interrupted:
                return await self.submit(item)
            return self._result(joined, index)
        batch: _Batch[Item, Result] = _Batch(item, self._barriers_started)
        gather = bool(self._unanswered) or bool(self._barriers)
        self._unanswered[batch] = None
        try:
            with anyio.CancelScope(shield=True):  # anyio's cancellation waits for the answer
                if gather:
                    # Requests are in flight: let the other tasks of this round join (and let
                    # the barrier commands started before it finish).
                    self._open = batch
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                    if self._open is batch:
                        self._open = None
                    for number, finished in list(self._barriers.items()):
                        if number <= batch.epoch:
                            await finished.wait()
                # Else nothing is in flight: no one to wait for (a round costs a trip through
                # the loop).
                await self._send_batch(batch)
        except BaseException:
            # asyncio's own cancellation, which anyio's shield does not hold: the others must
            # not wait for an answer that will never come.
            batch.interrupted = True
            raise
        finally:
            self._answered(batch)
        await anyio.lowlevel.checkpoint_if_cancelled()
        return self._result(batch, 0)

    async def _send_batch(self, batch: _Batch[Item, Result]) -> None:
        """Send ``batch``; a refused one (or a failed one, with ``retry_alone``) again one
        request at a time, while it still holds its place (barriers wait for it)."""
        try:
            answers = await self._send(batch.items)
        except Exception as error:
            if len(batch.items) == 1 or not (self._retry_alone or _refused(error)):
                batch.failure = error
                return
        else:
            batch.results = list(answers)
            return
        batch.results = [None] * len(batch.items)

        async def alone(index: int, item: Item) -> None:
            try:
                batch.results[index] = (await self._send([item]))[0]
            except Exception as error:
                batch.failures[index] = error

        async with anyio.create_task_group() as group:
            for index, item in enumerate(batch.items):
                group.start_soon(alone, index, item)

    def _answered(self, batch: _Batch[Item, Result]) -> None:
        if self._open is batch:
            self._open = None
        del self._unanswered[batch]
        batch.done.set()

    def _result(self, batch: _Batch[Item, Result], index: int) -> Result:
        failure = batch.failures.get(index, batch.failure)
        if batch.interrupted:
            failure = _INTERRUPTED
        if failure is None:
            return batch.results[index]  # type: ignore[return-value]
        if index == 0 and not isinstance(failure, BaseExceptionGroup):
            raise failure  # the sender raises what it met
        raise self._failed(failure) from failure

    async def drain(self) -> None:
        """Wait until every request submitted so far is answered."""
        while self._unanswered:
            await next(iter(self._unanswered)).done.wait()

    @asynccontextmanager
    async def barrier(self) -> AsyncIterator[None]:
        """Run a command in call order with the requests (see the module documentation)."""
        self._barriers_started += 1
        number = self._barriers_started
        finished = self._barriers[number] = anyio.Event()
        self._open = None  # later callers must not join a batch sent before the command
        try:
            while True:
                earlier = next((b for b in self._unanswered if b.epoch < number), None)
                if earlier is None:
                    break
                await earlier.done.wait()
            yield
        finally:
            del self._barriers[number]
            finished.set()


#: Why a caller fails whose batch's sender was interrupted (a write: sending it again would put
#: it after the commands called after it; it may or may not have reached the server).
_INTERRUPTED: Final = RuntimeError("its batch's sender was cancelled before the answer came")


def _refused(error: BaseException) -> bool:
    """Whether the server refused the batch (one request it would not take), not an outage."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return isinstance(error, StoreError) and not isinstance(error, StoreUnavailableError)


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
