"""Index searches in long-lived worker threads, handed over for a few microseconds.

A lookup must not walk a graph on the event loop's thread, but ``anyio.to_thread.run_sync`` costs
50-110 µs per call on this project's machine (a limiter, a cancel scope, a future and a task per
call, on top of the two thread wake-ups), which is a third of a whole lookup at 100,000 entries.
:class:`Searcher` instead keeps ``threads`` worker threads for the life of the cache's actor, each
started through ``anyio.to_thread.run_sync`` in the actor's task group (so none outlives it), each
blocked on a :class:`queue.SimpleQueue` between searches. A lookup puts its request on the queue
and waits on an event; the thread that took it searches and wakes the loop through the loop's own
thread-safe callback (asyncio's ``call_soon_threadsafe``, trio's ``run_sync_soon``), without
waiting for the loop to run it. Measured with a real search (``benchmarks/semantic_speed.py``):
about 10-50 µs of hand-off instead of 50-90.

Requests queued together are served together: a thread takes every request waiting (up to
``_BATCH``), searches each partition's share in one call and wakes the loop once for all of them,
so that concurrent lookups cost one hand-off between them.

Without a running actor (before ``run``, after it ended) or on an event loop that is neither
asyncio nor trio, searches go through ``anyio.to_thread.run_sync`` as before.

A lookup that is the only search under way does not come here at all when its graph is known to
be quick to search: the cache searches it on the loop's thread (``SemanticCache._search``),
since a hop to a thread and back costs as much as the search.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from typing import Final

import anyio
import anyio.abc
import numpy as np
import sniffio

from rgruntime.runtime._actor import Request
from rgruntime.semantic.embedder import Vectors, worker_limiter
from rgruntime.semantic.index import PartitionIndex

__all__ = ["Searcher"]

#: Requests one thread takes at once: enough to share hand-offs under load, few enough that the
#: last of them does not wait long for the first.
_BATCH: Final = 16

Found = list[tuple[int, float]]


class _Search(Request[Found | None]):
    """One search. A worker thread fills ``found`` or ``error``; the loop's thread then answers
    the request with them (None: no thread took it, search through anyio.to_thread instead)."""

    __slots__ = ("error", "found", "index", "k", "vector")

    def __init__(self, index: PartitionIndex, vector: Vectors, k: int) -> None:
        super().__init__()
        self.index = index
        self.vector = vector
        self.k = k
        self.found: Found | None = None
        self.error: BaseException | None = None


#: Put on the queue to stop a thread (each stopping thread puts it back for the next one).
_STOP: Final = None


def _loop_scheduler() -> Callable[..., object] | None:
    """The running loop's "call this soon, from any thread, without waiting" function."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        return asyncio.get_running_loop().call_soon_threadsafe
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    return None


class Searcher:
    """Searches partition indices in ``threads`` dedicated worker threads (see the module)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._queue: queue.SimpleQueue[_Search | None] = queue.SimpleQueue()
        self._schedule: Callable[..., object] | None = None
        # True while the threads serve the queue; read and written on the loop's thread only, so
        # that a request is queued only while some thread will take it.
        self._open = False

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the threads until cancelled (``await task_group.start(searcher.serve)``)."""
        schedule = _loop_scheduler()
        if schedule is None:
            task_status.started()  # searches keep using anyio.to_thread
            return
        self._schedule = schedule
        limiter = anyio.CapacityLimiter(self.threads)
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.threads):
                    group.start_soon(self._thread, limiter)
                self._open = True
                task_status.started()
                try:
                    await anyio.sleep_forever()
                finally:
                    # Every request queued so far is ahead of this: the threads answer it, then
                    # stop, and the group waits for them.
                    self._open = False
                    self._queue.put(_STOP)
        finally:
            self._open = False
            self._release_left_behind()

    async def _thread(self, limiter: anyio.CapacityLimiter) -> None:
        await anyio.to_thread.run_sync(self._work, limiter=limiter)

    def _release_left_behind(self) -> None:
        """Wake the lookups whose requests no thread will take (a thread cancelled before it
        started): they search through anyio.to_thread instead."""
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request is not None:
                request.answer(None)

    async def search(self, index: PartitionIndex, vector: Vectors, k: int) -> Found:
        """``index.search(vector, k)`` in a worker thread."""
        if self._open:
            request = _Search(index, vector, k)
            self._queue.put(request)
            # If cancelled here, the thread still searches; nobody reads the answer.
            found = await request.result()
            if found is not None:
                return found
        return await anyio.to_thread.run_sync(index.search, vector, k, limiter=worker_limiter())

    # -- in the worker threads ---------------------------------------------------------------

    def _work(self) -> None:
        take = self._queue.get
        take_now = self._queue.get_nowait
        while True:
            batch: list[_Search] = []
            stop = False
            request = take()
            while True:
                if request is _STOP:
                    stop = True
                else:
                    batch.append(request)
                if len(batch) >= _BATCH:
                    break
                try:
                    request = take_now()
                except queue.Empty:
                    break
            if batch:
                self._answer(batch)
            if stop:
                self._queue.put(_STOP)  # for the next thread
                return

    def _answer(self, batch: list[_Search]) -> None:
        shares: dict[int, list[_Search]] = {}
        for request in batch:
            shares.setdefault(id(request.index), []).append(request)
        for share in shares.values():
            try:
                if len(share) == 1:
                    request = share[0]
                    request.found = request.index.search(request.vector, request.k)
                    continue
                k = max(request.k for request in share)
                vectors = np.stack([request.vector for request in share])
                for request, found in zip(
                    share, share[0].index.search_many(vectors, k), strict=True
                ):
                    request.found = found[: request.k]
            except Exception as error:  # the lookups fail, the thread goes on
                for request in share:
                    request.error = error
        schedule = self._schedule
        assert schedule is not None
        schedule(_wake, batch)


def _wake(batch: list[_Search]) -> None:
    """On the loop's thread: answer what the worker thread found."""
    for request in batch:
        if request.error is not None:
            request.fail(request.error)
        else:
            request.answer(request.found)
