"""A failed load gives each of its waiters an exception of its own.

Raising the loader's one exception object from every waiter grew its traceback by each waiter's
frames in turn: with 1,000 waiters the last one's traceback was 10,007 lines long and took about
a second to format (O(n²) over all waiters). Each waiter now raises a copy of the loader's
exception, of the same type, whose ``__cause__`` is the loader's exception.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from types import TracebackType

import anyio
import pytest

import rgruntime
from rgruntime import Layer, LoadFailedError, RGRuntimeError
from rgruntime.runtime.loads import copy_exception

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


class ProviderDown(Exception):
    """An exception whose __init__ takes other arguments than its message (args)."""

    def __init__(self, provider: str, status: int) -> None:
        super().__init__(f"{provider} answered {status}")
        self.provider = provider
        self.status = status


class Stubborn(Exception):
    """An exception that cannot be rebuilt from its args: copying it fails."""

    def __new__(cls, code: int) -> Stubborn:
        if not isinstance(code, int):
            raise TypeError("code must be an int")
        return super().__new__(cls, code)

    def __init__(self, code: int) -> None:
        super().__init__(f"code {code}")


@pytest.fixture
async def layer() -> AsyncIterator[Layer]:
    async with rgruntime.open_runtime() as runtime:
        yield runtime.layer("tool")


async def fail_together(layer: Layer, key: str, error: Exception, waiters: int) -> list[Exception]:
    """What each of ``waiters`` callers of one load raises when its loader raises ``error``."""
    release = anyio.Event()
    caught: list[Exception] = []

    async def loader() -> object:
        await release.wait()
        raise error

    async def call() -> None:
        try:
            await layer.get_or_load(key, loader)
        except Exception as raised:
            caught.append(raised)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as callers:
            for _ in range(waiters):
                callers.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            assert layer.statistics().load_waiters == waiters
            release.set()
    assert len(caught) == waiters
    return caught


def frame_count(traceback_: TracebackType | None) -> int:
    count = 0
    while traceback_ is not None:
        count, traceback_ = count + 1, traceback_.tb_next
    return count


def shown_lines(error: BaseException) -> int:
    return len("".join(traceback.format_exception(error)).splitlines())


async def test_each_waiter_of_a_failed_load_gets_a_traceback_of_its_own(layer: Layer) -> None:
    alone = ProviderDown("model", 503)
    (single,) = await fail_together(layer, "alone", alone, 1)
    crowd = ProviderDown("model", 503)
    errors = await fail_together(layer, "crowd", crowd, 1000)

    # Cheap checks first: before the fix the frames of all 1,000 waiters piled up on one object.
    frames = frame_count(single.__traceback__)
    assert frames <= 10
    assert [frame_count(error.__traceback__) for error in errors] == [frames] * 1000
    assert len({id(error) for error in errors}) == 1000
    for error in errors:
        # The loader's own type, message and attributes; the loader's exception is the cause.
        assert type(error) is ProviderDown
        assert (str(error), error.provider, error.status) == ("model answered 503", "model", 503)
        assert error.__cause__ is crowd
    # The loader's exception keeps only the load's frames, however many waiters raised.
    assert frame_count(crowd.__traceback__) == frame_count(alone.__traceback__) <= 10
    # What a user sees: as long with 1,000 waiters as with one, and short.
    lines = shown_lines(single)
    assert lines < 80
    assert {shown_lines(errors[0]), shown_lines(errors[-1])} == {lines}
    shown = "".join(traceback.format_exception(errors[-1]))
    assert shown.count("The above exception was the direct cause") == 1
    assert shown.count("in loader\n") == shown.count("in call\n") == 1
    assert layer.stats().load_failures == 2


async def test_an_exception_that_cannot_be_copied_arrives_wrapped(layer: Layer) -> None:
    original = Stubborn(7)
    errors = await fail_together(layer, "k", original, 50)
    for error in errors:
        assert isinstance(error, LoadFailedError)
        assert isinstance(error, RGRuntimeError)
        assert error.__cause__ is error.error is original
        assert str(error) == "the loader of layer 'tool', key 'k' raised Stubborn: code 7"
        assert frame_count(error.__traceback__) <= 10
    assert frame_count(original.__traceback__) <= 10
    assert "k" not in layer


def test_a_copy_keeps_the_type_message_attributes_and_notes() -> None:
    original = ProviderDown("search", 429)
    original.add_note("retry later")
    try:
        raise original
    except ProviderDown:
        pass
    copied = copy_exception(original)
    assert type(copied) is ProviderDown
    assert copied is not original
    assert (copied.args, copied.provider, copied.status) == (original.args, "search", 429)
    assert copied.__traceback__ is None
    # Notes are copied, not shared: a note one waiter adds is not seen by the others.
    copied.add_note("seen by one waiter")
    assert original.__notes__ == ["retry later"]
    assert copied.__notes__ == ["retry later", "seen by one waiter"]


@pytest.mark.parametrize(
    "error",
    [
        ValueError("plain"),
        KeyError("k"),
        OSError(2, "No such file", "/tmp/x"),
        ExceptionGroup("several", [ValueError(1), KeyError(2)]),
        rgruntime.InvalidArgumentError("ttl", -1, "a positive number"),
        rgruntime.LoaderRecursionError("tool", "k", (("tool", "k"),)),
        rgruntime.LayerNotFoundError("nope", ("tool",)),
    ],
    ids=repr,
)
def test_common_exceptions_copy_to_their_own_type(error: Exception) -> None:
    copied = copy_exception(error)
    assert type(copied) is type(error)
    assert copied is not error
    assert (copied.args, str(copied), vars(copied)) == (error.args, str(error), vars(error))


def test_an_uncopyable_exception_gives_none() -> None:
    assert copy_exception(Stubborn(3)) is None
