"""What a remote layer says to its store: names, envelopes, the breaker, and writes kept for later.

A runtime opens each remote store once and wraps it in a :class:`SharedStore` (the breaker, the
serializer, the wall clock and the health every layer on that store shares). Each remote layer
talks to it through its own :class:`StoreLink`:

- **names**: the layer ``response``'s key ``k`` is ``response:k`` in the store (layer names are
  identifiers, so the first ``:`` ends them), its tag ``t`` is ``response:t``, and every entry also
  carries the tag ``response``, so that clearing a layer is one tag invalidation;
- **envelopes**: values leave through the runtime's :class:`~rgruntime.stores.Serializer` (its
  codecs); what comes back is checked against the wall clock, so an entry whose TTL ran out is a
  miss whatever the server still holds, and a corrupt or foreign payload is a counted miss;
- **faults**: every call goes through the shared :class:`~rgruntime.runtime.breaker.Breaker`. A
  server that is away fails reads as misses and keeps writes in process (at most
  ``write_back_limit``, oldest dropped first and counted), written back in order by the link's
  writer task once the server answers again. With ``strict=True`` the layer raises instead;
- **cascades kept for later**: what depends on a removal made while the server was away (the
  edges other processes recorded there) is looked up once the removal reached it, and removed
  in its layer by the link's own layer (:class:`Invalidates`); so are the names whose lookup the
  server failed mid-cascade.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any, Final, Literal, NamedTuple, Protocol, TypeVar

import anyio
import anyio.abc
import attrs

from rgruntime.config import LayerConfig
from rgruntime.errors import RuntimeClosedError
from rgruntime.runtime._actor import Mailbox, Request
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.breaker import Breaker
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.stats import StoreHealth
from rgruntime.stores.base import INVALIDATION_CHANNEL, SCAN, RemoteStore
from rgruntime.stores.errors import (
    StoreError,
    StoreUnavailableError,
    UndecodableEntryError,
)
from rgruntime.stores.lease import wait_for_release
from rgruntime.stores.serialization import Envelope, Serializer

__all__ = ["FALLBACK_NEAR_TTL", "Found", "SharedStore", "StoreLink"]

log = logging.getLogger("rgruntime.stores")

T = TypeVar("T")

#: Seconds a near copy is served without asking the server when no invalidation reaches this
#: process (Memcached, or a Redis subscription that is down): the staleness other processes'
#: writes can cause here.
FALLBACK_NEAR_TTL: Final = 1.0

_HEALTH: Final[dict[str, Literal["ok", "down", "probing"]]] = {
    "closed": "ok",
    "open": "down",
    "half_open": "probing",
}

#: Changes a store remembers for the reads in flight (beyond them, a read takes all as changed).
_CHANGES_KEPT: Final = 4096

#: Keys remembered for pattern invalidations where the store cannot list its keys.
_KNOWN_KEYS: Final = 100_000

#: Keys a pattern invalidation deletes per round trip.
_DELETE_BATCH: Final = 500


class Found(NamedTuple):
    """An entry read from the store: its value and what is left of it (a tuple: this is made
    on every read from the store)."""

    value: Any
    #: Seconds left (None: no deadline).
    ttl: float | None
    tags: frozenset[str]
    cost: float


class SharedStore:
    """One opened store and what every layer on it shares (see the module documentation)."""

    __slots__ = (
        "_clock",
        "_recent",
        "_wall_offset",
        "breaker",
        "changes",
        "description",
        "errors",
        "last_error",
        "layers",
        "serializer",
        "store",
        "subscribed",
    )

    def __init__(self, store: RemoteStore, serializer: Serializer, clock: LoopClock) -> None:
        self.store = store
        self.serializer = serializer
        self.description = f"{store.kind} store (prefix {store.prefix!r})"
        self._clock = clock
        # Wall-clock time on the loop's clock: envelopes carry wall time (other processes compare
        # it), and tests in virtual time see entries expire with their clock.
        self._wall_offset = time.time() - clock.now()
        self.breaker = Breaker(clock.now)
        #: Whether the invalidation channel is live (set by the coherence task).
        self.subscribed = False
        #: Counts the changes that may make a read in flight stale; the latest are in _recent.
        self.changes = 0
        self._recent: deque[tuple[int, str | None]] = deque(maxlen=_CHANGES_KEPT)
        self.errors = 0
        self.last_error = ""
        #: The remote layers on this store, by name (dependents found on the server go there).
        self.layers: dict[str, Invalidates] = {}

    @property
    def has_channel(self) -> bool:
        return INVALIDATION_CHANNEL in self.store.capabilities

    def wall(self) -> float:
        return self._clock.now() + self._wall_offset

    def changed(self, names: Iterable[str] | None = None) -> None:
        """Entries changed: those under the store ``names``, or any (None: a tag invalidation,
        a clear, a resync). A read in flight must not install what it read of them."""
        recent = self._recent
        if names is None:
            self.changes += 1
            recent.append((self.changes, None))
            return
        for name in names:
            self.changes += 1
            recent.append((self.changes, name))

    def changed_since(self, mark: int, name: str) -> bool:
        """Whether the entry under the store ``name`` may have changed since ``changes`` was
        ``mark``: a change of it, or of anything, or more changes than the record keeps."""
        if self.changes == mark:
            return False
        recent = self._recent
        if not recent or recent[0][0] > mark + 1:
            return True  # the record no longer reaches back to the mark
        for number, changed in reversed(recent):
            if number <= mark:
                return False
            if changed is None or changed == name:
                return True
        return False

    async def call(self, operation: str, function: Callable[[], Awaitable[T]]) -> T:
        """``await function()`` through the breaker; :class:`StoreUnavailableError` when the
        server is away (or known to be: then at once)."""
        breaker = self.breaker
        ticket = breaker.allow()
        if ticket is None:
            raise StoreUnavailableError(
                self.description,
                operation,
                f"the server failed repeatedly; next try in {breaker.retry_in():.2f} s",
            )
        try:
            result = await function()
        except StoreUnavailableError as error:
            self._failed(ticket, error)
            raise
        except StoreError as error:
            breaker.succeeded(ticket)  # refused: the server is there, and answered
            self.errors += 1
            self.last_error = str(error)
            raise
        except BaseExceptionGroup as group:
            # A store call that fans out (one task per cluster bucket) may report several.
            unavailable, others = group.split(StoreUnavailableError)
            if unavailable is None or others is not None:
                breaker.abandoned(ticket)
                raise
            first = _first(unavailable)
            self._failed(ticket, first)
            raise first from group
        except BaseException:
            breaker.abandoned(ticket)  # cancelled, or a bug of ours: the server said nothing
            raise
        breaker.succeeded(ticket)
        return result

    def _failed(self, ticket: int, error: StoreUnavailableError) -> None:
        self.breaker.failed(ticket)
        self.errors += 1
        self.last_error = str(error)


def _first(group: BaseExceptionGroup[StoreUnavailableError]) -> StoreUnavailableError:
    first = group.exceptions[0]
    return first if isinstance(first, StoreUnavailableError) else _first(first)


class Invalidates(Protocol):
    """What the store's registry needs of a layer: removing keys (and what depends on them)."""

    async def invalidate(self, *, keys: Iterable[str] | None = None) -> int: ...

    async def remove_dependents(self, names: AbstractSet[str], dependents: Iterable[str]) -> None:
        """Remove ``dependents`` (store names the server records as computed from the store
        ``names``, which are gone) in their layers, as one cascade starting at ``names``."""


# A write waiting for the server: the envelope, its TTL and its store tags; None: a delete.
_Write = tuple[bytes, float | None, tuple[str, ...]] | None


class _Flush(Request[None]):
    __slots__ = ()


class StoreLink:
    """One remote layer's side of its store (see the module documentation)."""

    def __init__(self, shared: SharedStore, config: LayerConfig) -> None:
        self.shared = shared
        self.layer = config.name
        #: How long the edges to this layer's entries live on the server: its longest TTL.
        self.edge_ttl = config.max_ttl if config.max_ttl is not None else config.ttl
        self.strict = config.strict
        self.near_cache = config.near_cache
        self.lease_ttl = config.lease_ttl
        self._near_ttl = config.near_ttl
        self._limit = config.write_back_limit
        self._prefix = f"{config.name}:"
        #: Writes not yet on the server, oldest first, by key (a newer write replaces an older).
        self._pending: OrderedDict[str, _Write] = OrderedDict()
        self._mailbox: Mailbox[_Flush] = Mailbox(f"the store writer of layer {config.name!r}", 16)
        # Keys this process wrote or read, where the store cannot list its keys (pattern
        # invalidations reach these); bounded, least recently used out first.
        self._known: OrderedDict[str, None] | None = (
            None if SCAN in shared.store.capabilities else OrderedDict()
        )
        # Dependency edges waiting for the writer task: (dependent, dependencies, ttl).
        self._edges: deque[tuple[str, list[str], float | None]] = deque()
        # News for other processes that could not go out, kept for the writer task to retry.
        self._news_keys: dict[str, None] = {}
        self._news_tags: dict[str, None] = {}
        # Direct writes and deletes in flight, by key: the number of the newest. One that fails
        # keeps itself for later only while it is still its key's newest change (an older write
        # failing late must not replace a newer one queued meanwhile).
        self._in_flight: dict[str, tuple[int, frozenset[str]]] = {}
        self._changes_started = 0
        # Invalidations and clears the server has not had yet (it was away), oldest first: the
        # writer applies them before the writes kept after them.
        self._removals: deque[Selection | None] = deque()
        # Removed store names whose dependents are still to be looked up on the server (their
        # removal was kept for later, or the server went away mid-cascade), oldest first, each
        # with the number of its newest keeping: a name kept again while the writer looks it up
        # stays kept.
        self._cascades: OrderedDict[str, int] = OrderedDict()
        self._cascades_kept = 0
        self.undecodable = 0
        self.kept_during_outage = 0
        self.written_back = 0
        self.write_back_dropped = 0
        self.refused_writes = 0
        self.cascades_dropped = 0

    # -- names ---------------------------------------------------------------------------------

    def name(self, key: str) -> str:
        return self._prefix + key

    def key_of(self, name: str) -> str | None:
        """The layer key a store name stands for, or None if it is another layer's."""
        return name[len(self._prefix) :] if name.startswith(self._prefix) else None

    def _remember(self, key: str) -> None:
        known = self._known
        if known is not None:
            known[key] = None
            known.move_to_end(key)
            if len(known) > _KNOWN_KEYS:
                known.popitem(last=False)

    def store_tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        return (self.layer, *(self._prefix + tag for tag in tags))

    def tag_of(self, tag: str) -> str | None:
        """The layer tag a store tag stands for ('' for the layer's own tag: everything)."""
        if tag == self.layer:
            return ""
        return tag[len(self._prefix) :] if tag.startswith(self._prefix) else None

    def near_ttl(self) -> float | None:
        """The longest a near copy may be served without asking the server."""
        if self._near_ttl is not None:
            return self._near_ttl
        shared = self.shared
        return None if shared.has_channel and shared.subscribed else FALLBACK_NEAR_TTL

    # -- reads ---------------------------------------------------------------------------------

    def encode(self, value: Any, ttl: float | None, tags: frozenset[str], cost: float) -> bytes:
        """The envelope of a write (``InvalidArgumentError`` naming where a value cannot go)."""
        envelope = Envelope(value=value, created=self.shared.wall(), ttl=ttl, tags=tags, cost=cost)
        return self.shared.serializer.encode(envelope)

    def _decode(self, data: bytes) -> Found | None:
        try:
            envelope = self.shared.serializer.decode(data)
        except UndecodableEntryError as error:
            self.undecodable += 1
            log.warning("layer %r: an entry read from the store is a miss: %s", self.layer, error)
            return None
        now = self.shared.wall()
        if envelope.expired(now):
            return None
        ttl = None if envelope.ttl is None else envelope.created + envelope.ttl - now
        return Found(envelope.value, ttl, envelope.tags, envelope.cost)

    async def read(self, key: str) -> Found | None:
        """The live entry under ``key`` in the store, or None (missing, expired, undecodable,
        or the server is away: then, with ``strict``, :class:`StoreUnavailableError`)."""
        if key in self._pending:  # written here while the server was away: that is the truth
            write = self._pending[key]
            return None if write is None else self._decode(write[0])
        shared = self.shared
        name = self._prefix + key
        try:
            data = await shared.call("get", lambda: shared.store.get(name))
        except StoreUnavailableError:
            if self.strict:
                raise
            return None
        if data is None:
            return None
        self._remember(key)
        return self._decode(data)

    # -- writes --------------------------------------------------------------------------------

    async def write(self, key: str, data: bytes, ttl: float | None, tags: frozenset[str]) -> None:
        """Write through, then tell other processes; kept for later if the server is away. A
        write the server refuses raises its :class:`~rgruntime.stores.StoreError`."""
        write: _Write = (data, ttl, self.store_tags(tags))
        self._remember(key)
        self._pending.pop(key, None)  # an older write still waiting must not land after this one
        await self._apply_now(key, write)

    async def _apply_now(self, key: str, write: _Write) -> None:
        """Apply a caller's write or delete now; if the server is away, keep it for the writer
        task, unless a newer change of the key came meanwhile."""
        number = self._start_change(key, write)
        applied = False
        try:
            applied = await self._apply(key, write)
        except StoreError as error:
            if not isinstance(error, StoreUnavailableError):
                self.refused_writes += 1
            raise
        finally:
            newest = self._end_change(key, number)
        if not applied and newest:
            self._keep(key, write)

    def write_soon(self, key: str, data: bytes, ttl: float | None, tags: frozenset[str]) -> None:
        """Queue a write for the writer task (never suspends)."""
        self._queue(key, (data, ttl, self.store_tags(tags)))

    async def delete(self, key: str) -> bool:
        """Delete ``key`` in the store; whether it was there (False when the server is away:
        then the delete waits for it)."""
        self._pending.pop(key, None)
        shared = self.shared
        name = self._prefix + key
        number = self._start_change(key, None)
        try:
            removed = await shared.call("delete", lambda: shared.store.delete([name]))
        except StoreUnavailableError:
            if self.strict:
                self._end_change(key, number)
                raise
            if self._end_change(key, number):  # still the key's newest change: kept for later
                self._keep(key, None)
            self._keep_cascades([name])  # looked up once the delete reached the server
            return False
        except BaseException:
            self._end_change(key, number)
            raise
        self._end_change(key, number)
        await self.publish(keys=[name])
        return removed > 0

    def delete_soon(self, key: str) -> None:
        self._queue(key, None)

    def _queue(self, key: str, write: _Write) -> None:
        self._remember(key)
        self._in_flight.pop(key, None)  # newer than any direct change of the key in flight
        self._pending[key] = write
        self._pending.move_to_end(key)
        self._bound()
        self._mailbox.wake()

    def _keep(self, key: str, write: _Write) -> None:
        """The server is away: keep ``write`` for the writer task."""
        self.kept_during_outage += 1
        self._queue(key, write)

    def _bound(self) -> None:
        while len(self._pending) > self._limit:
            key, _ = self._pending.popitem(last=False)
            self.write_back_dropped += 1
            log.warning(
                "layer %r: more than %d writes wait for the store; the oldest (key %r) is dropped",
                self.layer,
                self._limit,
                key[:200],
            )

    async def _apply(self, key: str, write: _Write) -> bool:
        """Send one write to the server and publish it; False if the server is away."""
        shared = self.shared
        store = shared.store
        name = self._prefix + key
        try:
            if write is None:
                await shared.call("delete", lambda: store.delete([name]))
            else:
                data, ttl, tags = write
                await shared.call("set", lambda: store.set(name, data, ttl=ttl, tags=tags))
        except StoreUnavailableError:
            if self.strict:
                raise
            return False
        await self.publish(keys=[name])  # Redis: its set script published it already
        return True

    # -- invalidation --------------------------------------------------------------------------

    async def invalidate(self, selection: Selection) -> tuple[int | None, set[str]]:
        """Remove what ``selection`` names from the store and tell other processes: the number
        of entries removed when the store can count them (None otherwise), and the store names
        it selected (their dependents go too: :meth:`dependents`). While the server is away the
        removal is kept, and the writer task applies it when the server answers."""
        removed: set[str] = set()
        self._forget_selected(selection)
        try:
            counted = await self._remove_on_server(selection, removed)
        except StoreUnavailableError:
            if self.strict:
                raise
            self._keep_removal(selection)
            return None, removed
        finally:  # a read that began before the server removed them must not install them
            self.shared.changed(None if selection.tags or selection.pattern else removed)
        await self.publish(keys=removed, tags=[self._prefix + tag for tag in selection.tags])
        return counted, removed

    async def _remove_on_server(self, selection: Selection, removed: set[str]) -> int | None:
        """The store's side of :meth:`invalidate`: adds the names removed to ``removed``."""
        shared = self.shared
        store = shared.store
        counted: int | None = 0
        if selection.keys:
            names = [self._prefix + key for key in selection.keys]
            counted = await shared.call("delete", lambda: store.delete(names))
            removed.update(names)
        if selection.tags:
            tags = [self._prefix + tag for tag in selection.tags]
            gone = await shared.call("invalidate_tags", lambda: store.invalidate_tags(tags))
            if gone is None or counted is None:
                counted = None
            else:
                counted += len(set(gone) - removed)
                removed.update(gone)
        if selection.pattern is not None:
            found = await self._delete_matching(selection, removed)
            counted = None if found is None or counted is None else counted + found
        return counted

    async def _delete_matching(self, selection: Selection, removed: set[str]) -> int | None:
        """Delete the keys matching the selection's pattern (a scan bounded by the layer's
        prefix); how many. A store that cannot list keys (Memcached) deletes the matching keys
        this process wrote or read (documented); how many is then unknown (None)."""
        store = self.shared.store
        pattern = selection.pattern
        assert pattern is not None
        if SCAN in store.capabilities:
            names = await self.shared.call("scan", lambda: _scan(store, self._prefix + pattern))
        else:
            known = [key for key in self._known or () if selection.matches(key, frozenset())]
            names = [self._prefix + key for key in known]
        count = 0
        for start in range(0, len(names), _DELETE_BATCH):
            batch = [name for name in names[start : start + _DELETE_BATCH] if name not in removed]
            if batch:
                count += await self._delete_names(batch)
                removed.update(batch)
        return count if SCAN in store.capabilities else None

    async def _delete_names(self, names: list[str]) -> int:
        store = self.shared.store
        return await self.shared.call("delete", lambda: store.delete(names))

    async def clear(self) -> None:
        """Remove every entry of this layer from the store (and from other processes)."""
        shared = self.shared
        self._forget_selected(None)
        try:
            await self._clear_on_server()
        except StoreUnavailableError:
            if self.strict:
                raise
            self._keep_removal(None)
        finally:
            shared.changed()
        await self.publish(tags=[self.layer])

    async def _clear_on_server(self) -> None:
        shared = self.shared
        await shared.call("clear", lambda: shared.store.invalidate_tags([self.layer]))

    def _forget_selected(self, selection: Selection | None) -> None:
        """Drop the kept and in-flight changes that ``selection`` (None: everything) removes:
        they are older than the removal, and must not land after it."""
        if selection is None:
            self._pending.clear()
            self._in_flight.clear()
            return
        for key in selection.keys:
            self._pending.pop(key, None)
            self._in_flight.pop(key, None)
        if selection.tags or selection.pattern is not None:
            for key, write in list(self._pending.items()):
                if selection.matches(key, self._layer_tags(write)):
                    del self._pending[key]
            for key, (_, tags) in list(self._in_flight.items()):
                if selection.matches(key, tags):
                    del self._in_flight[key]

    def _keep_removal(self, selection: Selection | None) -> None:
        """The server is away: keep the removal for the writer task (keys as kept deletes)."""
        self.kept_during_outage += 1
        if selection is not None:
            for key in selection.keys:
                self._queue(key, None)
            self._keep_cascades(self._prefix + key for key in selection.keys)
            if not selection.tags and selection.pattern is None:
                return
            selection = attrs.evolve(selection, keys=())
        self._removals.append(selection)
        self._mailbox.wake()

    async def _apply_removal(self) -> bool:
        """Send the oldest kept invalidation or clear; False if the server is away."""
        selection = self._removals[0]
        removed: set[str] = set()
        try:
            if selection is None:
                await self._clear_on_server()
            else:
                await self._remove_on_server(selection, removed)
        except StoreUnavailableError:
            return False
        except StoreError as error:
            self._refused("an invalidation kept while the server was away", error)
        finally:
            self.shared.changed()
            # What is gone is gone, even if the rest failed (a retry would not find it again):
            # its dependents go once the kept removals and writes are on the server. A clear
            # cascades no more than a direct one does (RemoteLayer.clear; docs/stores.md).
            self._keep_cascades(removed)
        self._removals.popleft()
        self.written_back += 1
        tags = [self.layer] if selection is None else [self._prefix + t for t in selection.tags]
        await self.publish(keys=removed, tags=tags)
        return True

    async def publish(self, *, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Tell other processes' near caches what to drop (store names and store tags), from
        the caller's task: the store gathers concurrent publications into one message (and a
        Redis write's own script published its key already). News that cannot go out now is
        kept for the writer task to retry, so that no near copy elsewhere outlives a change."""
        shared = self.shared
        if not shared.has_channel:
            return  # Memcached: near copies live at most near_ttl (documented)
        keys, tags = list(keys), list(tags)
        if not keys and not tags:
            return
        try:
            await shared.call(
                "publish", lambda: shared.store.publish_invalidation(keys=keys, tags=tags)
            )
        except StoreUnavailableError:
            if self.strict:
                raise
            self._news_keys.update(dict.fromkeys(keys))
            self._news_tags.update(dict.fromkeys(tags))
            self._mailbox.wake()

    async def _publish_news(self) -> bool:
        """Publish the news gathered; False (the news kept for a retry) if the server is away."""
        keys, tags = list(self._news_keys), list(self._news_tags)
        shared = self.shared
        try:
            await shared.call(
                "publish", lambda: shared.store.publish_invalidation(keys=keys, tags=tags)
            )
        except StoreUnavailableError:
            return False
        except StoreError as error:
            self._refused("news of a change", error)
        for key in keys:  # what gathered meanwhile waits for the next message
            self._news_keys.pop(key, None)
        for tag in tags:
            self._news_tags.pop(tag, None)
        return True

    # -- the dependency graph's edges on the server --------------------------------------------

    def add_edges_soon(self, key: str, dependencies: Iterable[str], ttl: float | None) -> None:
        """Queue edges from the store ``dependencies`` to this layer's ``key`` for the writer
        task: whichever process invalidates a dependency finds the dependent there."""
        names = list(dependencies)
        if names:
            self._edges.append((self._prefix + key, names, ttl))
            self._mailbox.wake()

    async def _write_edges(self) -> bool:
        dependent, dependencies, ttl = self._edges[0]
        store = self.shared.store
        try:
            await self.shared.call(
                "add_edges", lambda: store.add_edges(dependent, dependencies, ttl=ttl)
            )
        except StoreUnavailableError:
            return False
        except StoreError as error:
            self._refused(f"the dependency edges of {dependent!r}", error)
        self._edges.popleft()
        return True

    async def dependents(self, names: Iterable[str]) -> set[str]:
        """The store names recorded (by any process) as computed from any of ``names``. If the
        server goes away on the way, the names not looked up are kept: the writer task looks
        them up when it answers, and the layer removes what it finds then."""
        found: set[str] = set()
        names = list(names)
        for index, name in enumerate(names):
            try:
                found |= await self._dependents_of(name)
            except StoreUnavailableError:
                if self.strict:
                    raise
                self._keep_cascades(names[index:])
                break
        return found

    def _keep_cascades(self, names: Iterable[str]) -> None:
        """Keep removed store ``names`` for the writer task to look up their dependents (after
        the removals and writes kept before them); at most ``write_back_limit``, the oldest
        dropped first, counted and logged (what depended on them then lives out its TTL)."""
        cascades = self._cascades
        for name in names:
            self._cascades_kept += 1
            cascades[name] = self._cascades_kept
            cascades.move_to_end(name)
        if not cascades:
            return
        while len(cascades) > self._limit:
            name, _ = cascades.popitem(last=False)
            self.cascades_dropped += 1
            log.warning(
                "layer %r: more than %d removals wait for their dependents to be looked up; "
                "the oldest (%r) is dropped: what depends on it lives out its TTL",
                self.layer,
                self._limit,
                name[:200],
            )
        self._mailbox.wake()

    async def _cascade_kept(self) -> bool:
        """Look up what depends on the oldest kept name and have the layer remove it; False if
        the server is away (the name stays kept, and so if the task is cancelled meanwhile)."""
        name, number = next(iter(self._cascades.items()))
        try:
            found = await self._dependents_of(name)
            layer = self.shared.layers.get(self.layer)
            if found and layer is not None:
                await layer.remove_dependents({name}, found)
        except (StoreUnavailableError, RuntimeClosedError):
            return False  # away (or a strict layer down the chain was): tried again later
        except StoreError as error:
            self._refused(f"the lookup of what depends on {name!r}", error)
        if self._cascades.get(name) == number:  # not kept again meanwhile
            del self._cascades[name]
        return True

    async def _dependents_of(self, name: str) -> frozenset[str]:
        store = self.shared.store
        return await self.shared.call("dependents_of", lambda: store.dependents_of(name))

    # -- single flight across processes --------------------------------------------------------

    async def take_lease(self, key: str) -> str | None:
        """The load lease of ``key``: a token; None if another process holds it; ``""`` when
        the server is away (load without one)."""
        shared = self.shared
        name = self._prefix + key
        try:
            token = await shared.call(
                "acquire_lease", lambda: shared.store.acquire_lease(name, self.lease_ttl)
            )
        except StoreUnavailableError:
            if self.strict:
                raise
            return ""
        return token

    async def release_lease(self, key: str, token: str) -> None:
        if not token:
            return
        shared = self.shared
        name = self._prefix + key
        with contextlib.suppress(StoreUnavailableError):  # else it expires after lease_ttl
            await shared.call("release_lease", lambda: shared.store.release_lease(name, token))

    async def wait_for_release(self, key: str) -> None:
        """Wait (at most ``lease_ttl``) for the process holding ``key``'s lease to finish."""
        name = self._prefix + key
        with contextlib.suppress(StoreUnavailableError):  # away: the caller loads by itself
            await wait_for_release(self.shared.store, name, within=self.lease_ttl)

    # -- the writer task -----------------------------------------------------------------------

    async def flush(self) -> None:
        """Return once every write and news queued before the call reached the server (or it
        is away)."""
        await self._mailbox.ask(_Flush())

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write queued writes in order; while the server is away, retry as the breaker
        allows. Runs in the layers' task group and ends with it."""
        task_status.started()
        waiting: list[_Flush] = []
        try:
            while True:
                chore = self._next_chore()
                if chore is not None:
                    done = await chore()
                else:
                    for request in waiting:
                        request.answer(None)
                    waiting.clear()
                    message = await self._mailbox.receive()
                    if message is not None:
                        waiting.append(message)
                    continue
                if done:
                    continue
                # The server is away: answer flushes (nothing more can be done now), and try
                # again when the breaker lets a probe through.
                for request in waiting:
                    request.answer(None)
                waiting.clear()
                deadline = anyio.current_time() + max(self.shared.breaker.retry_in(), 0.01)
                message = await self._mailbox.receive(deadline)
                if message is not None:
                    waiting.append(message)
        finally:
            self._mailbox.close()
            for request in waiting:
                request.answer(None)

    def _start_change(self, key: str, write: _Write) -> int:
        """A direct write or delete of ``key`` is on its way: its number (the newest)."""
        self._changes_started += 1
        self._in_flight[key] = (self._changes_started, self._layer_tags(write))
        return self._changes_started

    def _end_change(self, key: str, number: int) -> bool:
        """The change ``number`` of ``key`` is over; whether it is still the newest."""
        newest = self._in_flight.get(key, (None,))[0] == number
        if newest:
            del self._in_flight[key]
        return newest

    def _layer_tags(self, write: _Write) -> frozenset[str]:
        """The layer's own tags of a write (a delete has none)."""
        tags = () if write is None else write[2]
        return frozenset(tag for tag in map(self.tag_of, tags) if tag is not None)

    def _refused(self, what: str, error: StoreError) -> None:
        """The server refused ``what`` from the writer task: never retried (it would be refused
        again, and hold what waits behind it); counted and logged."""
        self.refused_writes += 1
        log.warning("layer %r: the store refused %s: %s", self.layer, what, error)

    def warn_if_left(self) -> None:
        """Log what never reached the server (the runtime is closing and it is away)."""
        if self._pending or self._removals or self._cascades:
            log.warning(
                "layer %r: closing with %d write(s) and %d invalidation(s) that never reached "
                "the store, and %d removal(s) whose dependents were not looked up (%s): lost",
                self.layer,
                len(self._pending),
                len(self._removals),
                len(self._cascades),
                self.shared.last_error or "the server is away",
            )

    def _next_chore(self) -> Callable[[], Awaitable[bool]] | None:
        """What the writer does next, in order: removals (before the writes kept after them),
        writes, the dependents of removals (once those are on the server), dependency edges,
        news; None: nothing waits."""
        if self._removals:
            return self._apply_removal
        if self._pending:
            return self._write_oldest
        if self._cascades:
            return self._cascade_kept
        if self._edges:
            return self._write_edges
        if self._news_keys or self._news_tags:
            return self._publish_news
        return None

    async def _write_oldest(self) -> bool:
        key, write = next(iter(self._pending.items()))
        try:
            written = await self._apply(key, write)
        except StoreUnavailableError:  # strict: nobody waits here to hear it
            written = False
        except StoreError as error:
            # Refused (a value the server will not take): sending it again would be refused
            # again, and would hold the writes after it. Dropped, counted and logged.
            self._refused(f"a write of key {key!r}", error)
            if self._pending.get(key, ...) is write:
                del self._pending[key]
            return True
        if not written:
            return False
        if self._pending.get(key, ...) is write:  # not replaced by a newer write meanwhile
            del self._pending[key]
        self.written_back += 1
        return True

    def health(self, remote_hits: int) -> StoreHealth:
        shared = self.shared
        breaker = shared.breaker
        state = _HEALTH[breaker.state]
        return StoreHealth(
            kind=shared.store.kind,
            state=state,
            coherent=shared.has_channel and shared.subscribed,
            errors=shared.errors,
            last_error=shared.last_error,
            outages=breaker.opened,
            remote_hits=remote_hits,
            undecodable=self.undecodable,
            pending_writes=len(self._pending),
            kept_during_outage=self.kept_during_outage,
            written_back=self.written_back,
            write_back_dropped=self.write_back_dropped,
            kept_removals=len(self._removals),
            refused_writes=self.refused_writes,
            kept_cascades=len(self._cascades),
            cascades_dropped=self.cascades_dropped,
        )


async def _scan(store: RemoteStore, pattern: str) -> list[str]:
    """Every store name matching ``pattern``, each once (the scan closed in this task)."""
    found = store.scan(pattern)
    names: dict[str, None] = {}
    try:
        async for name in found:
            names[name] = None
    finally:
        close = getattr(found, "aclose", None)
        if close is not None:
            await close()
    return list(names)
