"""Helpers shared by the test modules: the two backends and their virtual clocks.

Two kinds of virtual clock are used:

- **autojump** clocks, for ``virtual_time`` tests run by anyio's pytest plugin: trio's
  ``MockClock(autojump_threshold=0)`` and looptime's asyncio loop. When every task sleeps, time
  jumps to the next deadline, so a TTL of an hour takes no real time and a deadlock under
  ``anyio.fail_after`` becomes a ``TimeoutError`` instead of a hang;
- **manual** clocks, for the stateful tests, which drive a runtime from another thread through a
  blocking portal. There an autojump clock would race ahead whenever the portal waits for the next
  call (to the next TTL deadline, and the next...), so time moves only when the test says so:
  trio's ``MockClock()`` (rate 0, no autojump) and :class:`ManualClockEventLoop`.

:func:`jump_clock` moves any of these clocks forward synchronously, without a checkpoint, which is
how a test shows that a read rejects an expired entry before the layer's actor could run.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import anyio
import looptime
import sniffio
import trio
import trio.testing

__all__ = [
    "BACKENDS",
    "ManualClockEventLoop",
    "jump_clock",
    "manual_time_backend",
    "new_looptime_loop",
    "virtual_time_backend",
]

BACKENDS: Final = ("asyncio", "trio")


def new_looptime_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose time starts at 0 and jumps to the next timer when all tasks sleep."""
    return looptime.new_event_loop(start=0, end=None, idle_step=None, idle_timeout=None)


def virtual_time_backend(name: str) -> tuple[str, dict[str, Any]]:
    """The ``anyio_backend`` value that runs ``name`` on an autojump virtual clock."""
    if name == "trio":
        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return "asyncio", {"loop_factory": new_looptime_loop}


class ManualClockEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` starts at 0 and moves only through :meth:`advance`.

    While it waits for I/O (a portal call from another thread) it sleeps in real time, and its
    clock stays where it is: the asyncio counterpart of trio's ``MockClock()`` without autojump.
    """

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def manual_time_backend(name: str) -> tuple[str, dict[str, Any]]:
    """``(backend, backend_options)`` for a blocking portal on a clock that only jumps."""
    if name == "trio":
        return "trio", {"clock": trio.testing.MockClock()}
    return "asyncio", {"loop_factory": ManualClockEventLoop}


def jump_clock(seconds: float) -> None:
    """Move the running loop's virtual clock ``seconds`` forward now, without a checkpoint.

    No other task runs in between: timers that fell due fire at the caller's next checkpoint.
    """
    if sniffio.current_async_library() == "trio":
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, trio.testing.MockClock):
            raise TypeError(f"jump_clock() needs trio's MockClock, not {clock!r}")
        clock.jump(seconds)
        return
    loop = asyncio.get_running_loop()
    if isinstance(loop, ManualClockEventLoop):
        loop.advance(seconds)
    elif isinstance(loop, looptime.LoopTimeEventLoop):
        # setup_looptime(start=...) is looptime's way to set the time of a running loop.
        loop.setup_looptime(start=loop.time() + seconds)
    else:
        raise TypeError(f"jump_clock() needs a virtual-time asyncio loop, not {loop!r}")


async def raise_a_stray_cancellation() -> None:
    """Raise a cancellation that no enclosing cancel scope caused.

    It is caught inside a scope of its own and raised again outside it: the same as awaiting a
    future that someone else cancelled (asyncio), on any backend.
    """
    caught: BaseException | None = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(1)
        except anyio.get_cancelled_exc_class() as error:
            caught = error
    assert caught is not None
    raise caught
