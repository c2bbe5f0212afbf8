"""A Memcached store: pymemcache's pooled clients in worker threads.

No async Memcached client runs on trio (DEPENDENCY-NOTES.md), so each operation runs as one
synchronous step in ``anyio.to_thread.run_sync`` behind a :class:`anyio.CapacityLimiter` no larger
than the connection pool (pymemcache raises when its pool is exhausted instead of waiting).

Keys are spread over the servers by rendezvous hashing, as pymemcache's ``HashClient`` does, but
over a fixed ring of one ``PooledClient`` per server rather than through ``HashClient`` itself:
its failover bookkeeping is not thread-safe (two threads marking a dead server raised
``ValueError: No such node`` in tests/stores/test_failures.py), it silently returns defaults (a
miss, ``False``) for a server inside its retry window, and moving a dead server's keys to the
others serves stale entries when it comes back. Here a server that is down makes its own keys
raise :class:`~rgruntime.stores.StoreUnavailableError` (the layer serves a miss), and its pool
reconnects once it answers again. Every read also reads the store's root stamp (below): while
the server holding it is down, every read raises.

Memcached has no sets, no scripts, no key listing and no pub/sub, so the guarantees are weaker than
Redis's (docs/stores.md):

- **Tags are generations.** Each tag has a generation stamp in Memcached (``g:<tag>``). An entry
  records, in a frame around its envelope, the stamps of its tags *and of every ancestor tag*
  (``products:phones`` records ``products`` too) and of the store's root. Invalidating a tag
  replaces its stamp; reading an entry compares the stamps it recorded with the current ones, and
  any difference, or a stamp that Memcached evicted, makes the entry a miss. Invalidation is thus
  O(1) and immediate, but the stale entries stay in memory until they expire or are evicted, and
  ``invalidate_tags`` cannot say which keys it removed (it returns ``None``).
- **clear()** replaces the root stamp: every entry of this prefix becomes a miss, other prefixes on
  the same servers are untouched (``flush_all`` would wipe them).
- **TTL**: Memcached counts whole seconds, so the frame also carries the entry's wall-clock
  deadline, checked on read.
- **Leases**: ``add`` with an expiry (whole seconds, rounded up). Releasing compares the token and
  deletes in two steps: a lease that expires between them, and is taken by another process in
  that instant, could be deleted (pymemcache has no compare-and-delete).
- **scan()** and the invalidation channel raise
  :class:`~rgruntime.stores.UnsupportedOperationError`: give near caches in front of a Memcached
  store short TTLs, or publish invalidations through a Redis store.
- Keys longer than 200 bytes or with characters Memcached refuses are stored under their hash.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Self, TypeVar

import anyio
import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]
import xxhash
from pymemcache.client.base import PooledClient  # type: ignore[import-untyped,import-not-found,unused-ignore]
from pymemcache.client.rendezvous import RendezvousHash  # type: ignore[import-untyped,import-not-found,unused-ignore]
from pymemcache.exceptions import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    MemcacheClientError,
    MemcacheError,
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from rgruntime.stores.base import Invalidation
from rgruntime.stores.coalescing import Coalescer, failure_of
from rgruntime.stores.config import MemcachedStoreConfig
from rgruntime.stores.errors import StoreError, StoreUnavailableError, UnsupportedOperationError
from rgruntime.stores.lifetime import OpenedOnce
from rgruntime.stores.validation import (
    TAG_SEPARATOR,
    check_key,
    check_keys,
    check_lease_ttl,
    check_tag_list,
    check_ttl,
    check_write,
)

__all__ = ["MemcachedNames", "MemcachedStore"]

T = TypeVar("T")

_FRAME_MAGIC: Final = "rgm1"
_EDGES_MAGIC: Final = "rgd1"
#: The generation of the whole store (never a user tag: tags are non-empty).
_ROOT: Final = ""
_MAX_PLAIN_KEY: Final = 200
#: Memcached reads an expiry above 30 days as a Unix time.
_RELATIVE_EXPIRY_LIMIT: Final = 30 * 86400
_CAS_ATTEMPTS: Final = 16


def _expiry(ttl: float | None) -> int:
    if ttl is None:
        return 0
    seconds = math.ceil(ttl)
    if seconds > _RELATIVE_EXPIRY_LIMIT:
        return math.ceil(time.time() + ttl)
    return max(1, seconds)


def _lineage(tags: Iterable[str]) -> set[str]:
    """The tags, every ancestor of each (``a:b:c`` gives ``a``, ``a:b``, ``a:b:c``), the root."""
    found = {_ROOT}
    for tag in tags:
        levels = tag.split(TAG_SEPARATOR)
        found.update(TAG_SEPARATOR.join(levels[: depth + 1]) for depth in range(len(levels)))
    return found


def _stamp() -> bytes:
    return secrets.token_hex(8).encode()


class MemcachedNames:
    """Memcached key names: ``<prefix><kind>:<key>``, or ``<prefix><kind>#<hash>`` when unsafe."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def name(self, kind: str, key: str) -> str:
        if len(key) <= _MAX_PLAIN_KEY and key.isascii() and key.isprintable() and " " not in key:
            return f"{self.prefix}{kind}:{key}"
        return f"{self.prefix}{kind}#{xxhash.xxh3_128_hexdigest(key.encode())}"

    def entry(self, key: str) -> str:
        return self.name("e", key)

    def generation(self, tag: str) -> str:
        return self.name("g", tag) if tag else f"{self.prefix}g"

    def lease(self, key: str) -> str:
        return self.name("l", key)

    def edges(self, key: str) -> str:
        return self.name("d", key)


class _Ring:
    """One pooled client per server; each key on the server rendezvous hashing picks for it."""

    def __init__(self, config: MemcachedStoreConfig) -> None:
        self.clients = {
            str(server): PooledClient(
                (server.host, server.port),
                connect_timeout=config.timeout,
                timeout=config.timeout,
                no_delay=True,
                max_pool_size=config.pool_size,
                default_noreply=False,
            )
            for server in config.servers
        }
        self._hash = RendezvousHash(nodes=list(self.clients))

    def _client(self, name: str) -> PooledClient:
        return self.clients[self._hash.get_node(name)]

    def get(self, name: str) -> bytes | None:
        return self._client(name).get(name)  # type: ignore[no-any-return]

    def get_many(self, names: Iterable[str]) -> dict[str, bytes]:
        by_server: dict[str, list[str]] = {}
        for name in names:
            by_server.setdefault(self._hash.get_node(name), []).append(name)
        found: dict[str, bytes] = {}
        for server, server_names in by_server.items():
            found.update(self.clients[server].get_many(server_names))
        return found

    def gets(self, name: str) -> tuple[bytes | None, bytes | None]:
        return self._client(name).gets(name)  # type: ignore[no-any-return]

    def set(self, name: str, value: bytes, expire: int) -> bool:
        return bool(self._client(name).set(name, value, expire=expire, noreply=False))

    def add(self, name: str, value: bytes, expire: int) -> bool:
        return bool(self._client(name).add(name, value, expire=expire, noreply=False))

    def cas(self, name: str, value: bytes, cas: bytes, expire: int) -> bool:
        return bool(self._client(name).cas(name, value, cas, expire=expire, noreply=False))

    def delete(self, name: str) -> bool:
        return bool(self._client(name).delete(name, noreply=False))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


class _Operations:
    """The synchronous steps, each run whole in one worker thread."""

    def __init__(self, client: _Ring, names: MemcachedNames, description: str) -> None:
        self._client = client
        self._names = names
        self._description = description

    def _generations(self, tags: Iterable[str], create: bool) -> dict[str, bytes | None]:
        names = {tag: self._names.generation(tag) for tag in tags}
        found = self._client.get_many(list(names.values()))
        stamps = {tag: found.get(name) for tag, name in names.items()}
        if create:
            for tag, stamp in stamps.items():
                if stamp is None:
                    # add, not set: two writers racing agree on whichever stamp landed first.
                    self._client.add(names[tag], _stamp(), expire=0)
                    stamps[tag] = self._client.get(names[tag])
        return stamps

    def set(self, key: str, envelope: bytes, ttl: float | None, tags: list[str]) -> None:
        stamps = self._generations(_lineage(tags), create=True)
        if any(stamp is None for stamp in stamps.values()):
            raise StoreUnavailableError(self._description, "set", "a tag generation was evicted")
        deadline = None if ttl is None else time.time() + ttl
        frame = [_FRAME_MAGIC, deadline, stamps, envelope]
        data = msgpack.packb(frame, use_bin_type=True)
        if not self._client.set(self._names.entry(key), data, expire=_expiry(ttl)):
            raise StoreError(f"memcached refused to store {key!r} ({len(data)} bytes)")

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        names = [self._names.entry(key) for key in keys]
        # The root's stamp comes with the entries: untagged entries need one round trip.
        root = self._names.generation(_ROOT)
        found = self._client.get_many([*names, root])
        frames = [_parse_frame(found.get(name)) for name in names]
        tags = {tag for frame in frames if isinstance(frame, _Frame) for tag in frame.stamps}
        tags.discard(_ROOT)
        current = self._generations(tags, create=False) if tags else {}
        current[_ROOT] = found.get(root)
        now = time.time()
        results: list[bytes | None] = []
        for frame in frames:
            if isinstance(frame, _Frame):
                fresh = (frame.deadline is None or now < frame.deadline) and all(
                    current.get(tag) == stamp for tag, stamp in frame.stamps.items()
                )
                results.append(frame.envelope if fresh else None)
            else:
                # None (a miss), or bytes that are not our frame: handed over as they are, for
                # the serializer to reject and the layer to count as a miss.
                results.append(frame)
        return results

    def delete(self, keys: Iterable[str]) -> int:
        removed = 0
        for key in keys:
            name = self._names.entry(key)
            # Present and live: a stale (invalidated) entry is not counted as removed.
            live = self.get_many([key])[0] is not None
            if self._client.delete(name) and live:
                removed += 1
        return removed

    def invalidate(self, tags: Iterable[str]) -> None:
        for tag in tags:
            if not self._client.set(self._names.generation(tag), _stamp(), expire=0):
                raise StoreError(f"memcached refused to store the generation of tag {tag!r}")

    def acquire_lease(self, key: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        added = self._client.add(self._names.lease(key), token.encode(), expire=_expiry(ttl))
        return token if added else None

    def release_lease(self, key: str, token: str) -> bool:
        name = self._names.lease(key)
        if self._client.get(name) != token.encode():
            return False
        return self._client.delete(name)

    def lease_active(self, key: str) -> bool:
        return self._client.get(self._names.lease(key)) is not None

    def add_edges(self, dependent: str, dependencies: Iterable[str], ttl: float | None) -> None:
        root = self._generations((_ROOT,), create=True)[_ROOT]
        for dependency in dependencies:
            self._add_edge(self._names.edges(dependency), dependent, root, ttl)

    def _add_edge(self, name: str, dependent: str, root: bytes | None, ttl: float | None) -> None:
        for _ in range(_CAS_ATTEMPTS):
            data, cas = self._client.gets(name)
            known = _parse_edges(data, root)
            if dependent in known:
                return
            value = msgpack.packb(
                [_EDGES_MAGIC, root, sorted({*known, dependent})], use_bin_type=True
            )
            if cas is None:
                if self._client.add(name, value, expire=_expiry(ttl)):
                    return
            elif self._client.cas(name, value, cas, expire=_expiry(ttl)):
                return
        raise StoreError(f"edges of {name!r}: {_CAS_ATTEMPTS} concurrent updates in a row")

    def dependents_of(self, key: str) -> frozenset[str]:
        root = self._generations((_ROOT,), create=False)[_ROOT]
        return frozenset(_parse_edges(self._client.get(self._names.edges(key)), root))

    def clear(self) -> None:
        self.invalidate((_ROOT,))

    def ping(self) -> None:
        # Every server of the ring, not one: a layer's health check must see any that is down.
        for server in self._client.clients.values():
            server.version()


class _Frame:
    __slots__ = ("deadline", "envelope", "stamps")

    def __init__(self, deadline: float | None, stamps: dict[str, bytes], envelope: bytes) -> None:
        self.deadline = deadline
        self.stamps = stamps
        self.envelope = envelope


def _parse_frame(data: bytes | None) -> _Frame | bytes | None:
    if data is None:
        return None
    try:
        frame: Any = msgpack.unpackb(data, raw=False)
    except Exception:
        return data
    if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == _FRAME_MAGIC):
        return data
    _, deadline, stamps, envelope = frame
    if not (
        (deadline is None or isinstance(deadline, float | int))
        and isinstance(stamps, dict)
        and all(isinstance(t, str) and isinstance(s, bytes) for t, s in stamps.items())
        and isinstance(envelope, bytes)
    ):
        return data
    return _Frame(deadline, stamps, envelope)


def _parse_edges(data: bytes | None, root: bytes | None) -> list[str]:
    """The dependents recorded in ``data``, if they were recorded since the last clear()."""
    if data is None or root is None:
        return []
    try:
        frame: Any = msgpack.unpackb(data, raw=False)
    except Exception:
        return []
    if not (isinstance(frame, list) and len(frame) == 3 and frame[0] == _EDGES_MAGIC):
        return []
    if frame[1] != root or not isinstance(frame[2], list):
        return []
    return [item for item in frame[2] if isinstance(item, str)]


class MemcachedStore(OpenedOnce):
    """A :class:`~rgruntime.stores.RemoteStore` on Memcached (see the module's documentation)."""

    kind = "memcached"
    #: No scan, no invalidation channel, no exact tag removal.
    capabilities: frozenset[str] = frozenset()

    def __init__(self, config: MemcachedStoreConfig) -> None:
        self._config = config
        self.prefix = config.prefix
        self.instance_id = secrets.token_hex(8)
        self._timeout = config.timeout
        self._names = MemcachedNames(config.prefix)
        self._operations: _Operations | None = None
        self._client: _Ring | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._description = (
            f"memcached {','.join(map(str, config.servers))} prefix {config.prefix!r}"
        )
        # Concurrent gets of one round go as one get_many (stores/coalescing.py).
        self._reads: Coalescer[str, bytes | None] = Coalescer(
            self._get_batch,
            failure_of(self._description, "get"),
            retry_alone=len(config.servers) > 1,  # one server down must not fail the others' keys
        )

    def __repr__(self) -> str:
        return f"<MemcachedStore {self._description}>"

    async def __aenter__(self) -> Self:
        self._open_once()
        self._client = _Ring(self._config)
        # Created here, not in __init__: a limiter belongs to the event loop that runs it.
        self._limiter = anyio.CapacityLimiter(self._config.pool_size)
        self._operations = _Operations(self._client, self._names, self._description)
        return self

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._operations = None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(client.close)

    async def _run(self, operation: str, step: Callable[[_Operations], T]) -> T:
        """``step`` in a worker thread, bounded by the timeout; failures to reach one error."""
        operations, limiter = self._operations, self._limiter
        if operations is None or limiter is None:
            raise StoreUnavailableError(
                self._description, operation, "the store is not open (use `async with store:`)"
            )
        try:
            # The thread cannot be interrupted: a deadline that passes waits for the socket
            # timeout (the same length) to end the call, so nothing outlives this block.
            with anyio.fail_after(self._timeout):
                return await anyio.to_thread.run_sync(step, operations, limiter=limiter)
        except TimeoutError as error:
            raise StoreUnavailableError(
                self._description, operation, f"no answer within {self._timeout:g} s"
            ) from error
        except (MemcacheClientError, MemcacheIllegalInputError) as error:
            raise StoreError(f"{self._description}: {operation}: {error}") from error
        except MemcacheUnexpectedCloseError as error:  # a MemcacheServerError, but an outage
            raise StoreUnavailableError(
                self._description, operation, "connection closed"
            ) from error
        except MemcacheServerError as error:
            # The server answered, and refused ("object too large for cache", "out of memory
            # storing object"): not an outage, and sending it again would be refused again.
            raise StoreError(f"{self._description}: {operation} refused: {error}") from error
        except (MemcacheError, OSError) as error:
            raise StoreUnavailableError(
                self._description, operation, str(error) or type(error).__name__
            ) from error

    async def ping(self) -> float:
        started = time.perf_counter()
        await self._run("ping", lambda ops: ops.ping())
        return time.perf_counter() - started

    async def get(self, key: str) -> bytes | None:
        """The envelope under ``key``; concurrent gets of one round go as one ``get_many`` in
        one worker thread (:mod:`~rgruntime.stores.coalescing`)."""
        return await self._reads.submit(check_key(key))

    async def _get_batch(self, keys: list[str]) -> list[bytes | None]:
        return await self._run("get", lambda ops: ops.get_many(keys))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked = check_keys(keys)
        if not checked:
            return []
        return await self._run("get_many", lambda ops: ops.get_many(checked))

    async def set(
        self, key: str, envelope: bytes, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        checked = check_write(key, envelope, ttl, tags)
        await self._run("set", lambda ops: ops.set(*checked))

    async def delete(self, keys: Iterable[str]) -> int:
        checked = list(dict.fromkeys(check_keys(keys)))
        return await self._run("delete", lambda ops: ops.delete(checked))

    async def invalidate_tags(self, tags: Iterable[str]) -> Sequence[str] | None:
        tag_list = check_tag_list(tags)
        await self._run("invalidate_tags", lambda ops: ops.invalidate(tag_list))
        return None

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        raise UnsupportedOperationError(
            self._description, "scan()", "Memcached cannot list keys; invalidate by tag instead"
        )

    async def clear(self) -> None:
        await self._run("clear", lambda ops: ops.clear())

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        key = check_key(key)
        checked = check_lease_ttl(ttl)
        return await self._run("acquire_lease", lambda ops: ops.acquire_lease(key, checked))

    async def release_lease(self, key: str, token: str) -> bool:
        key = check_key(key)
        return await self._run("release_lease", lambda ops: ops.release_lease(key, token))

    async def lease_active(self, key: str) -> bool:
        key = check_key(key)
        return await self._run("lease_active", lambda ops: ops.lease_active(key))

    async def publish_invalidation(
        self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), clear: bool = False
    ) -> None:
        raise UnsupportedOperationError(
            self._description,
            "the invalidation channel",
            "Memcached has no pub/sub; give near caches short TTLs, "
            "or publish through a Redis store",
        )

    def invalidations(self) -> AbstractAsyncContextManager[AsyncIterator[Invalidation]]:
        raise UnsupportedOperationError(
            self._description,
            "the invalidation channel",
            "Memcached has no pub/sub; give near caches short TTLs, "
            "or subscribe through a Redis store",
        )

    async def add_edges(
        self, dependent: str, dependencies: Iterable[str], *, ttl: float | None = None
    ) -> None:
        dependent = check_key(dependent, "dependent")
        checked = list(dict.fromkeys(check_keys(dependencies, "dependencies")))
        checked_ttl = check_ttl(ttl)
        await self._run("add_edges", lambda ops: ops.add_edges(dependent, checked, checked_ttl))

    async def dependents_of(self, key: str) -> frozenset[str]:
        key = check_key(key)
        return await self._run("dependents_of", lambda ops: ops.dependents_of(key))
