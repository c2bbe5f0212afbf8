"""The coalescer behind the stores' gets and sets (rgruntime/stores/coalescing.py), with a fake
server that records the batches it is sent: on asyncio and trio."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anyio
import pytest

from rgruntime.stores import StoreError, StoreUnavailableError
from rgruntime.stores.coalescing import Coalescer, failure_of

pytestmark = pytest.mark.anyio


class FakeServer:
    """Answers each item with its double, after ``release`` is set (when given)."""

    def __init__(self, *, fail_with: str | None = None) -> None:
        self.batches: list[list[int]] = []
        self.release: anyio.Event | None = None
        self.fail_with = fail_with

    async def send(self, items: list[int]) -> Sequence[int]:
        self.batches.append(list(items))
        if self.release is not None:
            await self.release.wait()
        else:
            await anyio.lowlevel.checkpoint()
        if self.fail_with is not None:
            raise StoreUnavailableError("fake store", "get", self.fail_with)
        return [item * 2 for item in items]


def coalescer(server: FakeServer, **options: int) -> Coalescer[int, int]:
    return Coalescer(server.send, failure_of("fake store", "get"), **options)


async def test_a_lone_request_goes_at_once_and_alone() -> None:
    server = FakeServer()
    requests = coalescer(server)
    assert await requests.submit(1) == 2
    assert await requests.submit(2) == 4
    assert server.batches == [[1], [2]]


async def test_requests_of_one_round_share_a_batch_and_get_their_own_answers() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    answers: dict[int, int] = {}

    async def ask(item: int) -> None:
        answers[item] = await requests.submit(item)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, 0)  # in flight alone: the others gather behind it
        await anyio.wait_all_tasks_blocked()
        for item in range(1, 31):
            group.start_soon(ask, item)
        await anyio.wait_all_tasks_blocked()
        server.release.set()
    assert answers == {item: item * 2 for item in range(31)}
    assert server.batches[0] == [0]
    assert sorted(server.batches[1]) == list(range(1, 31))
    assert len(server.batches) == 2


async def test_batches_are_bounded() -> None:
    server = FakeServer()
    requests = coalescer(server, max_batch=4)
    server.release = anyio.Event()
    answers: list[int] = []

    async def ask(item: int) -> None:
        answers.append(await requests.submit(item))

    async with anyio.create_task_group() as group:
        for item in range(11):
            group.start_soon(ask, item)
        await anyio.wait_all_tasks_blocked()
        server.release.set()
    assert sorted(answers) == [item * 2 for item in range(11)]
    assert all(len(batch) <= 4 for batch in server.batches)
    assert sorted(item for batch in server.batches for item in batch) == list(range(11))


async def test_a_failed_batch_fails_every_caller_with_its_own_error() -> None:
    server = FakeServer(fail_with="refused")
    requests = coalescer(server)
    server.release = anyio.Event()
    failures: list[BaseException] = []

    async def ask(item: int) -> None:
        try:
            await requests.submit(item)
        except StoreUnavailableError as error:
            failures.append(error)

    async with anyio.create_task_group() as group:
        for item in range(10):
            group.start_soon(ask, item)
        await anyio.wait_all_tasks_blocked()
        server.release.set()
    assert len(failures) == 10
    assert len({id(failure) for failure in failures}) == 10
    assert all("refused" in str(failure) for failure in failures)
    # The coalescer is usable afterwards.
    server.fail_with = None
    server.release = None
    assert await requests.submit(5) == 10


def test_followers_errors_name_the_store_and_the_cause() -> None:
    failed = failure_of("fake store", "set")
    unavailable = failed(ExceptionGroup("buckets", [StoreUnavailableError("s", "set", "reset")]))
    assert isinstance(unavailable, StoreUnavailableError)
    assert (unavailable.store, unavailable.operation, unavailable.reason) == (
        "fake store",
        "set",
        "reset",
    )
    refused = failed(StoreError("fake store: set: WRONGTYPE"))
    assert type(refused) is StoreError
    assert "WRONGTYPE" in str(refused)
    other = failed(KeyboardInterrupt())
    assert isinstance(other, StoreUnavailableError)
    assert "KeyboardInterrupt" in other.reason


async def test_a_cancelled_sender_still_answers_the_batch_others_joined() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    answers: dict[int, int] = {}
    scopes = {item: anyio.CancelScope() for item in range(1, 6)}

    async def ask(item: int) -> None:
        with scopes.get(item) or anyio.CancelScope():
            answers[item] = await requests.submit(item)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, 0)  # in flight alone: the next ones gather
        await anyio.wait_all_tasks_blocked()
        for item in scopes:
            group.start_soon(ask, item)
        await anyio.wait_all_tasks_blocked()
        batch = server.batches[1]
        sender = batch[0]  # the first of the round sends the batch it opened
        scopes[sender].cancel()
        await anyio.wait_all_tasks_blocked()
        server.release.set()
    assert sorted(batch) == [1, 2, 3, 4, 5]
    assert scopes[sender].cancelled_caught  # its cancellation, raised once the batch came back
    assert answers == {item: item * 2 for item in range(6) if item != sender}


async def test_a_cancelled_waiter_leaves_the_others_their_answers() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    answers: dict[int, int] = {}
    waiter_scope = anyio.CancelScope()

    async def ask(item: int, scope: anyio.CancelScope | None = None) -> None:
        with scope or anyio.CancelScope():
            answers[item] = await requests.submit(item)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, 0)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(ask, 1)
        group.start_soon(ask, 2, waiter_scope)
        group.start_soon(ask, 3)
        await anyio.wait_all_tasks_blocked()
        waiter_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        server.release.set()
    assert answers == {0: 0, 1: 2, 3: 6}


async def test_drain_waits_for_the_requests_submitted_before_it() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    drained = anyio.Event()

    async def drain() -> None:
        await requests.drain()
        drained.set()

    async with anyio.create_task_group() as group:
        group.start_soon(requests.submit, 0)  # alone, in flight
        await anyio.wait_all_tasks_blocked()
        group.start_soon(requests.submit, 1)  # gathered, then sent
        await anyio.wait_all_tasks_blocked()
        group.start_soon(drain)
        await anyio.wait_all_tasks_blocked()
        assert not drained.is_set()
        server.release.set()
    assert drained.is_set()
    await requests.drain()  # nothing in flight: at once


class Refusing(FakeServer):
    """Refuses any batch holding ``refused``; fails every batch of several with an outage
    when ``down_for_batches`` (a node down that only some requests need)."""

    def __init__(self, refused: int, *, down_for_batches: bool = False) -> None:
        super().__init__()
        self.refused = refused
        self.down_for_batches = down_for_batches

    async def send(self, items: list[int]) -> Sequence[int]:
        self.batches.append(list(items))
        await anyio.lowlevel.checkpoint()
        if self.refused in items:
            if self.down_for_batches:
                raise StoreUnavailableError("fake store", "get", "node down")
            raise StoreError("fake store: get refused: too large")
        if self.down_for_batches and len(items) > 1:
            raise ExceptionGroup("buckets", [StoreUnavailableError("fake store", "get", "node")])
        return [item * 2 for item in items]


async def _gather_outcomes(requests: Coalescer[int, int], count: int) -> dict[int, object]:
    """Each item's answer or error, all asked at once (the first to run goes alone, the others
    gather behind it)."""
    outcomes: dict[int, object] = {}
    async with anyio.create_task_group() as group:
        for item in range(count):
            group.start_soon(_ask_into, outcomes, requests, item)
    return outcomes


async def _ask_into(outcomes: dict[int, object], requests: Coalescer[int, int], item: int) -> None:
    """``item``'s answer, or the store's error, into ``outcomes``."""
    try:
        outcomes[item] = await requests.submit(item)
    except StoreError as error:
        outcomes[item] = error


async def test_a_refused_request_fails_its_caller_only() -> None:
    server = Refusing(refused=3)
    outcomes = await _gather_outcomes(Coalescer(server.send, failure_of("fake", "get")), 8)
    refused = outcomes.pop(3)
    assert type(refused) is StoreError
    assert outcomes == {item: item * 2 for item in [0, 1, 2, 4, 5, 6, 7]}
    assert any(len(batch) > 1 for batch in server.batches)  # they were gathered at first


async def test_after_an_outage_of_one_node_the_others_requests_are_answered() -> None:
    server = Refusing(refused=5, down_for_batches=True)
    requests = Coalescer(server.send, failure_of("fake", "get"), retry_alone=True)
    outcomes = await _gather_outcomes(requests, 8)
    failed = outcomes.pop(5)
    assert isinstance(failed, StoreUnavailableError)
    assert outcomes == {item: item * 2 for item in [0, 1, 2, 3, 4, 6, 7]}
    assert any(len(batch) > 1 for batch in server.batches)


async def test_without_retry_alone_every_caller_of_a_failed_batch_gets_the_stores_error() -> None:
    server = Refusing(refused=-1, down_for_batches=True)
    outcomes = await _gather_outcomes(Coalescer(server.send, failure_of("fake", "get")), 7)
    [alone] = [item for item, outcome in outcomes.items() if outcome == item * 2]
    errors = [outcome for item, outcome in outcomes.items() if item != alone]
    # Never an ExceptionGroup, the sender's included: a StoreUnavailableError of its own each.
    assert all(isinstance(error, StoreUnavailableError) for error in errors)
    assert len({id(error) for error in errors}) == 6


# asyncio's own Task.cancel (asyncio.timeout, wait_for...) exists on asyncio only; anyio's
# cancellation of a sender is covered on both backends above.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_cancelling_the_sender_in_its_round_sends_the_waiters_again() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    first = asyncio.ensure_future(requests.submit(0))  # alone, in flight
    await anyio.wait_all_tasks_blocked()
    sender = asyncio.ensure_future(requests.submit(1))  # opens a batch, waits its round
    waiter = asyncio.ensure_future(requests.submit(2))  # joins it
    await asyncio.sleep(0)
    sender.cancel()  # lands in the sender's one-round wait, which anyio's shield does not hold
    await anyio.wait_all_tasks_blocked()
    server.release.set()
    with anyio.fail_after(5):  # never a caller left waiting on a batch nobody sends
        results = await asyncio.gather(first, sender, waiter, return_exceptions=True)
    assert results[0] == 0
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2] == 4
    assert [1, 2] not in server.batches  # the cancelled batch was never sent


async def test_a_barrier_command_runs_between_the_requests_asked_before_and_after_it() -> None:
    server = FakeServer()
    requests = coalescer(server)
    server.release = anyio.Event()
    log: list[object] = []

    async def ask(item: int) -> None:
        await requests.submit(item)
        log.append(item)

    async def command() -> None:
        async with requests.barrier():
            log.append("command")

    async with anyio.create_task_group() as group:
        group.start_soon(ask, 0)  # alone, in flight
        await anyio.wait_all_tasks_blocked()
        group.start_soon(ask, 1)  # gathered, sent, waiting for the server
        await anyio.wait_all_tasks_blocked()
        group.start_soon(command)  # must wait for 0 and 1
        await anyio.wait_all_tasks_blocked()
        group.start_soon(ask, 2)  # asked after the command: sent after it
        await anyio.wait_all_tasks_blocked()
        assert log == []
        assert [2] not in server.batches
        server.release.set()
    assert log.index("command") > max(log.index(0), log.index(1))
    assert server.batches[-1] == [2]


class Recorder:
    """A fake server that logs what reaches it, sets and barrier commands alike."""

    def __init__(self) -> None:
        self.log: list[tuple[str, list[int]]] = []

    async def send(self, items: list[int]) -> Sequence[None]:
        self.log.append(("set", list(items)))
        await anyio.lowlevel.checkpoint()
        return [None] * len(items)

    def position(self, kind: str, item: int) -> int:
        return next(i for i, (what, items) in enumerate(self.log) if what == kind and item in items)


async def test_a_cancelled_sender_waiting_for_a_barrier_keeps_its_batchs_place() -> None:
    # The sender of [1, 5] is cancelled while its batch waits for an earlier command; a delete
    # of 5 asked after set(5) must still come after it (the batch keeps its place).
    server = Recorder()
    requests: Coalescer[int, None] = Coalescer(server.send, failure_of("fake", "set"))
    hold = anyio.Event()
    sender_scope = anyio.CancelScope()

    async def earlier_command() -> None:
        async with requests.barrier():
            server.log.append(("delete", [0]))
            await hold.wait()

    async def delete(item: int) -> None:
        async with requests.barrier():
            server.log.append(("delete", [item]))

    async def sender() -> None:
        with sender_scope:
            await requests.submit(1)

    async with anyio.create_task_group() as group:
        group.start_soon(earlier_command)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(sender)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(requests.submit, 5)  # joins the sender's batch
        await anyio.wait_all_tasks_blocked()
        group.start_soon(delete, 5)
        await anyio.wait_all_tasks_blocked()
        sender_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        hold.set()
    assert sender_scope.cancelled_caught
    assert server.position("set", 5) < server.position("delete", 5)


async def test_requests_sent_again_alone_keep_their_batchs_place() -> None:
    # A refused batch is sent again one request at a time before it counts as answered, so a
    # command asked meanwhile still comes after every one of its requests.
    server = Refusing(refused=3)
    retries = anyio.Event()
    log: list[object] = []

    async def send(items: list[int]) -> Sequence[int]:
        if len(items) == 1:
            await retries.wait()  # the requests sent again wait here
        answers = await server.send(items)
        log.extend(items)
        return answers

    requests = Coalescer(send, failure_of("fake", "set"))
    outcomes: dict[int, object] = {}

    async def command() -> None:
        async with requests.barrier():
            log.append("command")

    async with anyio.create_task_group() as group:
        group.start_soon(requests.submit, 100)  # in flight alone (held): the others gather
        await anyio.wait_all_tasks_blocked()
        for item in range(6):
            group.start_soon(_ask_into, outcomes, requests, item)
        await anyio.wait_all_tasks_blocked()  # their batch was refused; each waits to go alone
        group.start_soon(command)
        await anyio.wait_all_tasks_blocked()
        assert "command" not in log
        retries.set()
    assert isinstance(outcomes.pop(3), StoreError)
    assert outcomes == {item: item * 2 for item in [0, 1, 2, 4, 5]}
    assert log[-1] == "command"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_when_writes_must_keep_order_an_interrupted_senders_waiters_fail() -> None:
    # Sent again, a write would land after the commands asked after it: with
    # resend_interrupted=False its caller gets the store's error instead (its request may or
    # may not have reached the server).
    server = FakeServer()
    requests = Coalescer(server.send, failure_of("fake", "set"), resend_interrupted=False)
    server.release = anyio.Event()
    first = asyncio.ensure_future(requests.submit(0))
    await anyio.wait_all_tasks_blocked()
    sender = asyncio.ensure_future(requests.submit(1))
    waiter = asyncio.ensure_future(requests.submit(2))
    await asyncio.sleep(0)
    sender.cancel()
    await anyio.wait_all_tasks_blocked()
    server.release.set()
    with anyio.fail_after(5):
        results = await asyncio.gather(first, sender, waiter, return_exceptions=True)
    assert results[0] == 0
    assert isinstance(results[1], asyncio.CancelledError)
    assert isinstance(results[2], StoreUnavailableError)
    assert "cancelled" in str(results[2])
    assert [2] not in server.batches
