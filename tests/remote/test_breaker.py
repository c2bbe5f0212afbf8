"""The store breaker's pure steps, on a clock the test moves; and its tickets through the
store's calls, on virtual time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from rgruntime.runtime.breaker import FIRST_BACKOFF, LAST_BACKOFF, Breaker
from rgruntime.runtime.clock import backend_clock
from rgruntime.runtime.store_link import SharedStore
from rgruntime.stores import StoreUnavailableError
from rgruntime.stores.memory import MemoryStore
from rgruntime.stores.serialization import Serializer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _ticket(breaker: Breaker) -> int:
    ticket = breaker.allow()
    assert ticket is not None
    return ticket


def _opened(clock: Clock) -> Breaker:
    breaker = Breaker(clock)
    breaker.failed(_ticket(breaker))
    breaker.failed(_ticket(breaker))
    assert breaker.state == "open"
    return breaker


def test_two_failures_open_it_and_a_probe_after_the_backoff_closes_it() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.failed(_ticket(breaker))
    assert breaker.state == "closed"  # one failure can be a blip
    breaker.failed(_ticket(breaker))
    assert (breaker.state, breaker.opened) == ("open", 1)
    assert breaker.allow() is None
    assert breaker.retry_in() == pytest.approx(FIRST_BACKOFF)
    clock.now += FIRST_BACKOFF
    probe = _ticket(breaker)
    assert breaker.state == "half_open"
    assert breaker.allow() is None  # one probe at a time
    breaker.succeeded(probe)
    assert breaker.state == "closed"
    assert breaker.allow() is not None


def test_failed_probes_double_the_wait_up_to_the_last_backoff() -> None:
    clock = Clock()
    breaker = _opened(clock)
    waits = []
    for _ in range(8):
        waits.append(breaker.retry_in())
        clock.now += breaker.retry_in()
        breaker.failed(_ticket(breaker))
    assert waits[:3] == pytest.approx([FIRST_BACKOFF, FIRST_BACKOFF * 2, FIRST_BACKOFF * 4])
    assert max(waits) == pytest.approx(LAST_BACKOFF)
    assert breaker.opened == 1  # one outage, however many probes failed


def test_an_abandoned_probe_lets_the_next_call_probe_at_once() -> None:
    clock = Clock()
    breaker = _opened(clock)
    clock.now += FIRST_BACKOFF
    breaker.abandoned(_ticket(breaker))  # the probe was cancelled: no answer either way
    assert breaker.state == "open"
    assert breaker.allow() is not None


def test_a_late_failure_of_a_call_made_before_it_opened_changes_nothing() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    late = _ticket(breaker)
    breaker.failed(_ticket(breaker))
    breaker.failed(_ticket(breaker))
    retry = breaker.retry_in()
    breaker.failed(late)
    assert (breaker.state, breaker.opened, breaker.retry_in()) == ("open", 1, retry)


def _probing_with_an_older_call() -> tuple[Breaker, int, int]:
    """A breaker whose probe is out; the tickets of a call that began before it opened (still
    waiting for the server) and of the probe."""
    clock = Clock()
    breaker = Breaker(clock)
    older = _ticket(breaker)
    breaker.failed(_ticket(breaker))
    breaker.failed(_ticket(breaker))
    clock.now += FIRST_BACKOFF
    return breaker, older, _ticket(breaker)


@pytest.mark.parametrize("outcome", ["failed", "succeeded", "abandoned"])
def test_only_the_probe_decides_what_happens_to_the_probe(outcome: str) -> None:
    # A call that started before the probe ends while the probe is out: whatever its outcome,
    # it says nothing about the server now. The breaker stays half open, lets no second probe
    # overlap the first, and the probe alone decides.
    breaker, older, probe = _probing_with_an_older_call()
    getattr(breaker, outcome)(older)
    assert breaker.state == "half_open"
    assert breaker.allow() is None  # no second probe
    breaker.failed(probe)
    assert breaker.state == "open"
    assert breaker.retry_in() == pytest.approx(FIRST_BACKOFF * 2)  # the probe's failure, once


def test_an_older_call_answered_after_a_failed_probe_closes_it() -> None:
    # No probe is out any more: an answer from the server, whenever the call started, says it
    # is there.
    breaker, older, probe = _probing_with_an_older_call()
    breaker.failed(probe)  # open again, twice as long
    breaker.succeeded(older)  # the server answered a call from before: it is there
    assert breaker.state == "closed"


class _Calls:
    """Store calls through one shared store's breaker, each recording how it ended."""

    def __init__(self, shared: SharedStore) -> None:
        self.shared = shared
        self.outcomes: dict[str, str] = {}

    async def run(self, name: str, function: Callable[[], Awaitable[str]]) -> None:
        try:
            self.outcomes[name] = await self.shared.call("get", function)
        except StoreUnavailableError:
            self.outcomes[name] = "unavailable"


async def _away() -> str:
    raise StoreUnavailableError("memory", "get", "refused")


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_a_call_from_before_the_probe_failing_late_neither_fails_nor_doubles_it() -> None:
    older_may_fail, probe_may_answer = anyio.Event(), anyio.Event()

    async def older() -> str:
        await older_may_fail.wait()
        return await _away()

    async def probe() -> str:
        await probe_may_answer.wait()
        return "answered"

    async with MemoryStore() as store:
        shared = SharedStore(store, Serializer(), backend_clock())
        calls = _Calls(shared)
        # A probe let through twice would wait forever: a deadlock fails on virtual time.
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(calls.run, "older", older)
                await anyio.wait_all_tasks_blocked()
                for _ in range(2):
                    await calls.run("opening", _away)
                assert shared.breaker.state == "open"
                await anyio.sleep(FIRST_BACKOFF)
                group.start_soon(calls.run, "probe", probe)
                await anyio.wait_all_tasks_blocked()
                assert shared.breaker.state == "half_open"
                older_may_fail.set()
                await anyio.wait_all_tasks_blocked()
                assert calls.outcomes["older"] == "unavailable"
                assert shared.breaker.state == "half_open"  # still the probe's to decide
                await calls.run("overlapping", probe)  # refused at once: the probe is out
                assert calls.outcomes["overlapping"] == "unavailable"
                probe_may_answer.set()
    assert calls.outcomes["probe"] == "answered"
    assert (shared.breaker.state, shared.breaker.opened) == ("closed", 1)
