"""The actor that owns a layer's policy state.

One task per layer. It owns the eviction policy, the timer, tag and key indices and the byte
accounting, and it alone removes entries on its own account (expiry, eviction, invalidation).
Callers reach it through its inbox, an anyio memory object stream carrying:

- ``WAKE``: "there are buffered accesses or writes": sent at most once per maintenance pass;
- ``Invalidate``, ``Clear``, ``Maintain``: requests that carry a reply.

Before handling any message, and whenever its next timer is due, the actor runs one maintenance
pass, synchronously, in this order: apply writes, expire, evict to the bounds. Because the pass
never suspends, it always sees every write made before it: the entry map and the indices agree
whenever the actor acts.

Hits are not sent at all: each entry counts its own. When the policy names a victim whose count
moved since the actor last looked, the actor tells the policy about the access and asks again
(a second chance, as in CLOCK): the policy learns every hit that could change a decision, at the
moment it makes one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

import anyio
import anyio.abc

from rgruntime.errors import RuntimeClosedError
from rgruntime.policies import TieredPolicy, make_policy
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.budgets import BudgetReport
from rgruntime.runtime.entry import Entry
from rgruntime.runtime.indices import KeyIndex, TagIndex, TimerIndex
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.removals import RemovalReason

__all__ = ["LayerActor"]

#: The fewest ghosts (recently evicted keys) a layer remembers.
_MIN_GHOSTS: Final = 64

#: Inbox capacity. Wake-ups are deduplicated, so this bounds only concurrent requests.
_INBOX_SIZE: Final = 64


class _Request:
    """A message that expects an answer."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def answer(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    async def answer_received(self) -> Any:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class _Invalidate(_Request):
    __slots__ = ("selection",)

    def __init__(self, selection: Selection) -> None:
        super().__init__()
        self.selection = selection


class _Clear(_Request):
    __slots__ = ()


class _Maintain(_Request):
    __slots__ = ()


_WAKE: Final = object()
_Message = object  # a _Request, or _WAKE


class LayerActor:
    """Runs one layer's maintenance and answers its requests (see the module documentation)."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        config = layer.config
        options: dict[str, Any] = {}
        if config.strategy == "tiered":
            options["track_moves"] = True  # so that tier TTLs can follow promotions and demotions
            if config.tiers:
                options["tiers"] = config.tiers
        self._policy = make_policy(
            config.strategy, max_size=config.max_size, max_entries=config.max_entries, **options
        )
        # Only tiered policies have tiers whose TTLs cap an entry's deadline.
        self._tiers = self._policy if isinstance(self._policy, TieredPolicy) else None
        # Only recency policies need a new write moved behind the entries hit before it (see
        # _evict); frequency policies decide about new entries when they are written.
        self._fresh_writes_go_behind = config.strategy == "lru"
        self._timers = TimerIndex()
        self._tags = TagIndex()
        self._keys = KeyIndex()
        self._max_entries = layer.config.max_entries
        self._max_size = layer.config.max_size
        self._send, self._receive = anyio.create_memory_object_stream[_Message](_INBOX_SIZE)
        self._wake_pending = False
        self.size_bytes = 0
        self.second_chances = 0
        # Keys evicted recently and their sizes: a load of one of them is a miss that a larger
        # budget would have avoided (see rgruntime.runtime.budgets).
        self._ghosts: OrderedDict[str, int] = OrderedDict()
        self._ghost_bytes = 0
        self.ghost_hits = 0
        self._ghost_value = 0.0
        self.budget_changes = 0
        self.evictions = 0
        self.expirations = 0
        self.invalidations = 0
        self.maintenance_runs = 0

    # -- the callers' side ---------------------------------------------------------------------

    def request_maintenance(self) -> None:
        """Ask for a maintenance pass soon. Never suspends; repeated calls send one wake-up."""
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._send.send_nowait(_WAKE)
        except anyio.WouldBlock:
            pass  # the inbox is full: a pass runs before each of those messages anyway
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the actor has stopped: there is nothing left to maintain

    async def maintained(self) -> None:
        """Return once a maintenance pass has run after this call."""
        await self._request(_Maintain())

    async def invalidate(self, selection: Selection) -> int:
        return int(await self._request(_Invalidate(selection)))

    async def clear(self) -> int:
        return int(await self._request(_Clear()))

    def inbox_depth(self) -> int:
        return self._send.statistics().current_buffer_used

    def timer_count(self) -> int:
        return len(self._timers)

    def tag_count(self) -> int:
        return len(self._tags)

    def policy_size(self) -> int:
        return len(self._policy)

    async def _request(self, request: _Request) -> Any:
        try:
            await self._send.send(request)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise RuntimeClosedError(f"cache layer {self.layer.name!r} is closed") from None
        return await request.answer_received()

    # -- the actor's task ----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; loads run in a task group nested here and end with the actor."""
        try:
            async with anyio.create_task_group() as service:
                self.layer._attach(self, service)
                task_status.started()
                await self._serve()
        finally:
            self.layer._close()
            self._refuse_pending()

    async def _serve(self) -> None:
        receive = self._receive
        while True:
            message: _Message | None = None
            deadline = self.layer._clock.to_backend(self._timers.next_deadline())
            with anyio.CancelScope(deadline=deadline):
                message = await receive.receive()
            self._maintain()
            if isinstance(message, _Request):
                self._handle(message)

    def _handle(self, request: _Request) -> None:
        if isinstance(request, _Invalidate):
            request.answer(self._invalidate(request.selection))
        elif isinstance(request, _Clear):
            request.answer(self._clear())
        else:
            request.answer()

    def _refuse_pending(self) -> None:
        """Answer the requests still queued with an error, then close the inbox."""
        closed = RuntimeClosedError(f"cache layer {self.layer.name!r} closed")
        while True:
            try:
                message = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if isinstance(message, _Request):
                message.answer(error=closed)
        self._receive.close()
        self._send.close()

    # -- maintenance ---------------------------------------------------------------------------

    def _maintain(self) -> None:
        layer = self.layer
        self._wake_pending = False
        self.maintenance_runs += 1
        written: set[str] = set()
        if layer._writes:
            writes, layer._writes = layer._writes, []
            for old, new in writes:
                self._apply_write(old, new)
                if new is not None:
                    written.add(new.key)
        now = layer._now()
        self._expire(now)
        self._evict(written)
        if self._tiers is not None:
            self._apply_tier_ttls(now)

    def _apply_write(self, old: Entry | None, new: Entry | None) -> None:
        if old is not None:
            self._unindex(old)
            if new is None:
                self._policy.remove(old.key)
                self._keys.discard(old.key)
                self.invalidations += 1
        if new is not None:
            self._policy.record_write(new.key, new.size, new.expires_at, new.cost)
            if self._tiers is not None:
                self._cap_to_tier(new, self.layer._now())
            self._index(new)
            if old is None:
                self._keys.add(new.key)

    def _expire(self, now: float) -> None:
        entries = self.layer._entries
        for key in self._timers.pop_due(now):
            entry = entries[key]  # timers leave with their entry, so a due timer has one
            entry.timer = None
            if entry.expires_at > now:
                self._timers.add(entry)  # a sliding TTL moved the deadline: not due yet
            else:
                self._remove(entry, "expired")
                self.expirations += 1

    def _evict(self, written: set[str]) -> None:
        """Evict until within the bounds. ``written``: keys written since the last pass."""
        entries = self.layer._entries
        policy = self._policy
        max_entries, max_size = self._max_entries, self._max_size
        while (max_entries is not None and len(entries) > max_entries) or (
            max_size is not None and self.size_bytes > max_size
        ):
            key = policy.victim()
            entry = entries[key]
            if key in written and self._fresh_writes_go_behind:
                # Written since the last pass: the write may be more recent than the hits other
                # entries got meanwhile, so it goes behind them, once, instead of being the first
                # to go when they all get their second chance. Its own hits (all after its
                # write) still count below, so a new entry that was read outlives one that was not.
                written.discard(key)
                policy.record_access(key, entry.expires_at)
                continue
            if entry.hits != entry.seen_hits:
                # Hit since the policy last heard of it: report the access, ask again. Ends:
                # nothing can hit during this (synchronous) pass, so every key gets one chance.
                hits, entry.seen_hits = entry.hits - entry.seen_hits, entry.hits
                policy.record_access(key, entry.expires_at, hits)
                self.second_chances += 1
                continue
            self._remove(entry, "evicted")
            self.evictions += 1
            self._remember_evicted(entry)

    def _cap_to_tier(self, entry: Entry, now: float) -> bool:
        """Shorten ``entry``'s deadline to its tier's TTL; True if it changed."""
        assert self._tiers is not None
        tier = self._tiers.tier_of(entry.key)
        if tier is None or tier.ttl is None or now + tier.ttl >= entry.expires_at:
            return False
        entry.expires_at = now + tier.ttl
        return True

    def _apply_tier_ttls(self, now: float) -> None:
        """Entries that changed tier this pass are held to the TTL of the tier they are in now."""
        assert self._tiers is not None
        entries = self.layer._entries
        for key, _ in self._tiers.take_moves():
            entry = entries.get(key)
            if entry is not None and self._cap_to_tier(entry, now):
                self._timers.discard(entry)
                self._timers.add(entry)

    def _remember_evicted(self, entry: Entry) -> None:
        ghosts = self._ghosts
        self._ghost_bytes += entry.size - ghosts.pop(entry.key, 0)
        ghosts[entry.key] = entry.size
        # As many ghosts as half the live entries: enough to see what a modestly larger budget
        # would catch, without keeping a second cache's worth of keys.
        limit = max(_MIN_GHOSTS, len(self.layer._entries) // 2)
        while len(ghosts) > limit:
            self._ghost_bytes -= ghosts.popitem(last=False)[1]

    @property
    def max_size(self) -> int | None:
        """The byte budget now (the supervisor may have moved it since the layer started)."""
        return self._max_size

    def evicted_recently(self, key: str) -> bool:
        """Whether ``key`` is on the ghost list (for the layer's miss path)."""
        return key in self._ghosts

    def record_ghost_load(self, seconds: float) -> None:
        """A load of a recently evicted key took ``seconds``: what more budget would have saved."""
        self.ghost_hits += 1
        self._ghost_value += seconds

    def budget_report(self, minimum: int) -> BudgetReport:
        """This period's figures for the supervisor; starts the next period."""
        report = BudgetReport(
            budget=self._max_size or 0,
            minimum=minimum,
            ghost_value=self._ghost_value,
            ghost_bytes=self._ghost_bytes,
        )
        self._ghost_value = 0.0
        return report

    def set_max_size(self, size: int) -> None:
        """A new byte budget (from the supervisor); a smaller one is enforced at the next pass."""
        if size == self._max_size:
            return
        self._max_size = size
        self.budget_changes += 1
        resize = getattr(self._policy, "set_capacity", None)
        if resize is not None and self.layer.config.max_size is not None:
            resize(size)
        self.request_maintenance()

    def _invalidate(self, selection: Selection) -> int:
        found = set(selection.keys)
        if selection.pattern is not None:
            found.update(self._keys.matching(selection.pattern))
        for tag in selection.tags:
            found.update(self._tags.keys_under(tag))
        removed = self._remove_keys(found, "invalidated")
        for load in list(self.layer._loads.values()):
            if selection.matches(load.key, load.tags):
                load.discarded = True
                load.detach()
        return removed

    def _clear(self) -> int:
        removed = self._remove_keys(list(self.layer._entries), "cleared")
        for load in list(self.layer._loads.values()):
            load.discarded = True
            load.detach()
        return removed

    def _remove_keys(self, keys: set[str] | list[str], reason: RemovalReason) -> int:
        """Remove the entries under ``keys``; return how many of them were live."""
        entries = self.layer._entries
        now = self.layer._now()
        live = 0
        for key in keys:
            entry = entries.get(key)
            if entry is not None:
                live += entry.expires_at > now
                self._remove(entry, reason)
        self.invalidations += live
        return live

    def _remove(self, entry: Entry, reason: RemovalReason) -> None:
        layer = self.layer
        del layer._entries[entry.key]
        layer._retired_hits += entry.hits
        self._unindex(entry)
        self._keys.discard(entry.key)
        self._policy.remove(entry.key)
        if layer._removal_listeners:
            layer._removal_listeners.notify(entry.key, reason)

    def _index(self, entry: Entry) -> None:
        self._timers.add(entry)
        if entry.tags:
            self._tags.add(entry.key, entry.tags)
        self.size_bytes += entry.size

    def _unindex(self, entry: Entry) -> None:
        self._timers.discard(entry)
        if entry.tags:
            self._tags.discard(entry.key, entry.tags)
        self.size_bytes -= entry.size
