"""The actor kernel every actor of the runtime is built on: a typed request and a mailbox.

An actor is one task that owns some state and is reached through its mailbox:

- :class:`Request` is a message that expects an answer. The actor either ``answer``\\ s it or
  ``fail``\\ s it, exactly once; the asker awaits :meth:`Request.result`.
- :class:`Mailbox` is a bounded anyio memory stream plus a de-duplicated *wake-up*: callers that
  only need "run a pass soon" call :meth:`Mailbox.wake` as often as they like and at most one
  wake-up is queued until the actor takes it. :meth:`Mailbox.ask` sends a request and waits for
  its answer. :meth:`Mailbox.close` fails every request still queued with
  :class:`~rgruntime.RuntimeClosedError`, so that nobody waits for an actor that has stopped.

Nothing here knows what the actors do; each one defines its own request classes.
"""

from __future__ import annotations

import math
from typing import Any, Final, Generic, TypeVar

import anyio
import anyio.abc

from rgruntime.errors import RuntimeClosedError

__all__ = ["Mailbox", "Request"]

T = TypeVar("T")
M = TypeVar("M", bound="Request[Any]")


class _Wake:
    __slots__ = ()

    def __repr__(self) -> str:
        return "WAKE"


#: What a wake-up is in the stream (``receive`` hands the actor None for it).
WAKE: Final = _Wake()

_CLOSED_ERRORS: Final = (anyio.ClosedResourceError, anyio.BrokenResourceError)


class Request(Generic[T]):
    """A message that is answered (a value of type ``T``) or failed (an exception), once."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    @property
    def settled(self) -> bool:
        """Whether the request was answered or failed."""
        return self._done.is_set()

    def answer(self, value: T) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def result(self) -> T:
        """The answer, once given; the failure is raised."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class Mailbox(Generic[M]):
    """An actor's inbox of requests (of type ``M``) and wake-ups (see the module documentation).

    ``name`` appears in the errors of a closed mailbox (``"cache layer 'tool'"``).
    """

    __slots__ = ("_name", "_receive", "_send", "_wake_pending")

    def __init__(self, name: str, size: int) -> None:
        self._name = name
        self._send, self._receive = anyio.create_memory_object_stream[Any](size)
        self._wake_pending = False

    def __repr__(self) -> str:
        return f"<Mailbox of {self._name}: {self.depth()} queued>"

    # -- the callers' side ------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask the actor for a pass soon. Never suspends; repeated calls queue one wake-up."""
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._send.send_nowait(WAKE)
        except anyio.WouldBlock:
            # Full of requests: the actor runs a pass before each of them anyway.
            self._wake_pending = False
        except _CLOSED_ERRORS:
            pass  # the actor has stopped: there is nothing left to do

    async def ask(self, request: Request[T]) -> T:
        """Queue ``request`` (waiting for room) and return its answer."""
        await self.post(request)
        return await request.result()

    async def post(self, request: Request[Any]) -> None:
        """Queue ``request`` without waiting for its answer (waits only when the inbox is full:
        backpressure; with room, it does not even checkpoint)."""
        try:
            try:
                self._send.send_nowait(request)
            except anyio.WouldBlock:
                await self._send.send(request)
        except _CLOSED_ERRORS:
            raise RuntimeClosedError(f"{self._name} is closed") from None

    def depth(self) -> int:
        """Messages queued now."""
        return self._send.statistics().current_buffer_used

    # -- the actor's side -------------------------------------------------------------------------

    async def receive(self, deadline: float = math.inf) -> M | None:
        """The next request; None for a wake-up, or when ``deadline`` (the backend's time)
        passes first. Taking a wake-up lets the next :meth:`wake` queue another."""
        message: Any = WAKE
        with anyio.CancelScope(deadline=deadline):
            message = await self._receive.receive()
        if message is WAKE:
            self._wake_pending = False
            return None
        return message  # type: ignore[no-any-return]

    def receive_nowait(self) -> M | None:
        """The next queued request, taking the wake-ups before it; None when none is queued."""
        while True:
            try:
                message = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return None
            if message is WAKE:
                self._wake_pending = False
                continue
            return message  # type: ignore[no-any-return]

    def close(self) -> None:
        """Fail every queued request with :class:`~rgruntime.RuntimeClosedError`; refuse more."""
        while True:
            message = self.receive_nowait()
            if message is None:
                break
            # A fresh error each: one shared object would gather every waiter's traceback.
            message.fail(RuntimeClosedError(f"{self._name} closed"))
        self._receive.close()
        self._send.close()
