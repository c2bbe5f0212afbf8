"""The interface every remote store offers to a layer: :class:`RemoteStore`.

A store holds serialized envelopes (bytes from :class:`~rgruntime.stores.Serializer`) under string
keys, with a TTL and hierarchical tags, and offers what a layer and a near cache in front of it
need across processes:

- reads and writes: :meth:`~RemoteStore.get`, :meth:`~RemoteStore.get_many`,
  :meth:`~RemoteStore.set`, :meth:`~RemoteStore.delete`, :meth:`~RemoteStore.invalidate_tags`
  (``products`` removes entries tagged ``products`` or ``products:...``, never ``productsX``),
  :meth:`~RemoteStore.scan`, :meth:`~RemoteStore.clear` (this store's prefix only);
- single-flight across processes: :meth:`~RemoteStore.acquire_lease` /
  :meth:`~RemoteStore.release_lease`; a process that did not get the lease waits for the holder
  with :func:`~rgruntime.stores.wait_for_release` and then reads the key;
- coherence of near caches: :meth:`~RemoteStore.publish_invalidation` and
  :meth:`~RemoteStore.invalidations`;
- the dependency graph across processes: :meth:`~RemoteStore.add_edges`,
  :meth:`~RemoteStore.dependents_of`;
- health: :meth:`~RemoteStore.ping`; lifetime: ``async with store:`` opens its connections and
  closes them (nothing is bound to an event loop before that).

Every call is bounded by the store's ``timeout``: a server that is down, refuses, or does not answer
in time raises :class:`~rgruntime.stores.StoreUnavailableError`, whatever the client library did.
What a store cannot do raises :class:`~rgruntime.stores.UnsupportedOperationError`; check
:attr:`~RemoteStore.capabilities` first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol, Self, runtime_checkable

import attrs

__all__ = [
    "CAPABILITIES",
    "EXACT_TAGS",
    "INVALIDATION_CHANNEL",
    "SCAN",
    "Invalidation",
    "RemoteStore",
]

#: ``scan(pattern)`` lists keys.
SCAN: Final = "scan"
#: ``publish_invalidation`` / ``invalidations()`` work (Redis pub/sub, in-process streams).
INVALIDATION_CHANNEL: Final = "invalidation_channel"
#: ``invalidate_tags`` removes entries and returns their keys (not only marks them stale).
EXACT_TAGS: Final = "exact_tags"
CAPABILITIES: Final = frozenset({SCAN, INVALIDATION_CHANNEL, EXACT_TAGS})


@attrs.frozen
class Invalidation:
    """One message of the invalidation channel: what near caches must drop.

    ``keys`` and ``tags`` (hierarchical) were invalidated; ``clear`` means everything of this store.
    ``resync`` is set by the receiving side itself when messages may have been lost (the
    subscription was interrupted): a near cache must then drop everything, as for ``clear``.
    ``origin`` is the :attr:`RemoteStore.instance_id` of the publisher, so that a process can skip
    its own messages.
    """

    keys: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    clear: bool = False
    resync: bool = False
    origin: str = ""

    @property
    def drops_everything(self) -> bool:
        return self.clear or self.resync


@runtime_checkable
class RemoteStore(Protocol):
    """Serialized entries in a server shared by processes (see the module's documentation)."""

    #: ``"redis"``, ``"redis_cluster"``, ``"memcached"`` or ``"memory"``.
    kind: str
    #: The key prefix of this store: :meth:`clear` and :meth:`scan` never reach beyond it.
    prefix: str
    #: Which of :data:`CAPABILITIES` this store has.
    capabilities: frozenset[str]
    #: A random id of this store object, carried by the invalidations it publishes.
    instance_id: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def aclose(self) -> None:
        """Close the connections (idempotent). ``async with store:`` calls it on exit."""

    async def ping(self) -> float:
        """The round-trip time to the server(s) in seconds; raises if one is unavailable."""

    async def get(self, key: str) -> bytes | None:
        """The envelope stored under ``key``, or ``None`` (missing, expired, invalidated)."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """:meth:`get` for each key, in order, in as few round trips as the server allows."""

    async def set(
        self, key: str, envelope: bytes, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``envelope`` under ``key`` for ``ttl`` seconds (``None``: no expiry), tagged."""

    async def delete(self, keys: Iterable[str]) -> int:
        """Remove ``keys``; the number that were present."""

    async def invalidate_tags(self, tags: Iterable[str]) -> Sequence[str] | None:
        """Remove every entry tagged with one of ``tags`` or a tag below it (``tag:...``).

        Returns the keys removed, or ``None`` where the store cannot list them (Memcached marks
        them stale instead; see :data:`EXACT_TAGS`).
        """

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """The keys (without the prefix) matching the glob ``pattern``; a key may repeat.

        An async generator: to stop before the end, iterate under
        ``contextlib.aclosing(store.scan(...))`` so that it is closed in its own task.
        """

    async def clear(self) -> None:
        """Remove every entry (and dependency edge) of this store's prefix, and nothing else.

        Leases survive: they belong to loads in flight, and expire on their own.
        """

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        """Take the load lease of ``key`` for ``ttl`` seconds: a token, or ``None`` if held.

        A holder that crashes loses the lease when ``ttl`` runs out.
        """

    async def release_lease(self, key: str, token: str) -> bool:
        """Give the lease back if ``token`` still holds it; whether it did."""

    async def lease_active(self, key: str) -> bool:
        """Whether someone holds the lease of ``key``."""

    async def publish_invalidation(
        self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), clear: bool = False
    ) -> None:
        """Tell every subscriber (other processes' near caches) what to drop."""

    def invalidations(self) -> AbstractAsyncContextManager[AsyncIterator[Invalidation]]:
        """Subscribe: ``async with store.invalidations() as stream: async for message in stream``.

        The subscription is live when the block is entered (a message published after that is
        delivered) and ends with the block: a context manager rather than a bare async generator,
        so that leaving never depends on a generator being finalized.
        """

    async def add_edges(
        self, dependent: str, dependencies: Iterable[str], *, ttl: float | None = None
    ) -> None:
        """Record that ``dependent`` was computed from each of ``dependencies``."""

    async def dependents_of(self, key: str) -> frozenset[str]:
        """The keys recorded as computed from ``key`` (direct dependents only)."""
