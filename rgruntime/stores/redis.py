"""Redis and Redis Cluster stores, through valkey-glide (runs on asyncio and trio).

Why valkey-glide rather than coredis: measured in ``python -m benchmarks stores`` (docs/stores.md),
glide served 100 concurrent tasks 3.5-11x faster on either backend, standalone and cluster. Its one
cancellation caveat (a cancelled *blocking* command keeps its shared connection blocked) does not
apply: this store issues no blocking command, and waits for leases by polling. A cancelled
``get_pubsub_message`` loses the next message on trio, so the invalidation stream polls
``try_get_pubsub_message`` instead.

Key layout, buckets and the Lua scripts: :mod:`rgruntime.stores.keyspace`.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any, Final, NamedTuple, Self, TypeVar

import anyio
from glide import (
    AllNodes,
    ClusterScanCursor,
    ConditionalChange,
    ConfigurationError,
    ExpirySet,
    ExpiryType,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    GlideError,
    NodeAddress,
    ReadFrom,
    RequestError,
    Script,
    ServerCredentials,
)
from glide import TimeoutError as GlideTimeoutError

from rgruntime.stores.base import CAPABILITIES, Invalidation
from rgruntime.stores.channel import decode_invalidation, encode_invalidation
from rgruntime.stores.coalescing import Coalescer, failure_of
from rgruntime.stores.config import RedisClusterStoreConfig, RedisStoreConfig
from rgruntime.stores.errors import StoreError, StoreUnavailableError
from rgruntime.stores.keyspace import (
    ADD_EDGES_SCRIPT,
    DELETE_SCRIPT,
    INVALIDATE_SCRIPT,
    RELEASE_SCRIPT,
    SET_SCRIPT,
    Keyspace,
)
from rgruntime.stores.lifetime import OpenedOnce
from rgruntime.stores.validation import (
    check_key,
    check_keys,
    check_lease_ttl,
    check_tag_list,
    check_ttl,
    check_write,
)

__all__ = ["RedisStore"]

T = TypeVar("T")
Client = GlideClient | GlideClusterClient

_SCAN_COUNT: Final = 500
# Polling the subscription: fast while messages flow, backing off to this when idle. The idle
# rate bounds how late a near cache hears of an invalidation after a quiet spell (the issue asks
# for 50 ms, p99, measured by ``python -m benchmarks distributed``): 10 ms costs ~100 cheap polls
# a second per subscriber.
_POLL_MIN: Final = 0.001
_POLL_MAX: Final = 0.01
# While idle, the subscriber pings this often, to notice an interrupted subscription.
_HEALTH_INTERVAL: Final = 1.0


def _ms(seconds: float | None) -> int:
    """Milliseconds for PX (0: no expiry); at least 1 so that a tiny TTL still expires."""
    return 0 if seconds is None else max(1, math.ceil(seconds * 1000))


class _Messages:
    """The invalidations a subscribed client receives, polled (see the module's documentation).

    Every idle second it asks for the ids of its connections: a failed ask, or ids that changed
    (glide reconnected, and resubscribed, behind our back) mean messages may have been lost, and
    the next item is ``Invalidation(resync=True)``. A plain async iterator, not an async
    generator: a consumer that stops iterating leaves nothing to finalize.
    """

    def __init__(self, subscriber: Client, call: _Caller, connections: object) -> None:
        self._subscriber = subscriber
        self._call = call
        self._connections = connections
        self._delay = _POLL_MIN
        self._checked_at = time.monotonic()
        self._lost = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Invalidation:
        while True:
            message = self._subscriber.try_get_pubsub_message()
            if message is not None:
                self._delay = _POLL_MIN
                decoded = decode_invalidation(message.message)
                if decoded is not None:
                    return decoded
                continue
            if time.monotonic() - self._checked_at >= _HEALTH_INTERVAL:
                self._checked_at = time.monotonic()
                try:
                    connections = await _connection_ids(self._subscriber, self._call)
                except StoreUnavailableError:
                    self._lost = True
                else:
                    if self._lost or connections != self._connections:
                        self._lost = False
                        self._connections = connections
                        return Invalidation(resync=True)
            await anyio.sleep(self._delay)
            self._delay = min(self._delay * 2, _POLL_MAX)


def _subscriptions(configuration: Any, channels: set[str]) -> Any:
    """``configuration``'s (standalone or cluster) subscriptions to ``channels``, polled."""
    if not channels:
        return None
    exact = configuration.PubSubChannelModes.Exact
    return configuration.PubSubSubscriptions(
        channels_and_patterns={exact: channels}, callback=None, context=None
    )


_Caller = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def _connection_ids(client: Client, call: _Caller) -> object:
    """Who a client's connections are: the server's run id (new at every start) and the
    connection's id on it (new at every reconnection). Ids restart at 1 with the server, so the
    run id is needed: after a restart, the same connection id can come back."""

    def run_id(info: object) -> str:
        text = info.decode() if isinstance(info, bytes) else str(info)
        return next((line for line in text.splitlines() if line.startswith("run_id:")), text)

    if isinstance(client, GlideClusterClient):
        route = AllNodes()
        ids = await call("invalidations", lambda: client.client_id(route=route))
        infos = await call(
            "invalidations", lambda: client.custom_command(["INFO", "server"], route)
        )
        return (
            frozenset(ids.items()) if isinstance(ids, dict) else ids,
            frozenset((node, run_id(info)) for node, info in infos.items())
            if isinstance(infos, dict)
            else run_id(infos),
        )
    standalone = client
    connection = await call("invalidations", standalone.client_id)
    info = await call("invalidations", lambda: standalone.custom_command(["INFO", "server"]))
    return connection, run_id(info)


#: The key whose invalidation this task's last write already published (inside the write's own
#: script), with the ``instance_id`` of the store that wrote it; None after any other change. A
#: context variable: the write and the ``publish_invalidation`` that follows it run in the same
#: task, and another task's changes in between never clear (or claim) this one. (A task started
#: after the write inherits it: its publish of that key would be as redundant.) Every change is
#: still announced after it reaches the server: a write by its script, anything else by a publish.
_published_by_write: ContextVar[tuple[str, str] | None] = ContextVar(
    "rgruntime_published_by_write", default=None
)


class _Write(NamedTuple):
    """One ``set`` waiting in a batch."""

    key: str
    envelope: bytes
    ttl_ms: int
    tags: list[str]


#: Error replies that say the server cannot serve now (loading, a script running, a cluster
#: reconfiguring, a replica that cannot take writes): an outage, not a refusal. glide words them
#: by its own kinds ("- ReadOnly: You can't write against a read only replica", "- MasterDown:
#: ...", "BusyLoadingError", "TryAgain", "ClusterDown"), Redis by its codes; both are here, lower
#: case.
_TRANSIENT_REPLIES: Final = frozenset(
    (
        "loading",
        "busy",
        "masterdown",
        "clusterdown",
        "tryagain",
        "readonly",
        "noreplicas",
        "busyloadingerror",
        "clusterconnectionnotfound",
        "ioerror",
    )
)
#: glide's own answer when too many requests wait on a connection: an overload, not a refusal.
_CLIENT_OVERLOAD: Final = "inflight"


def _transient(message: str) -> bool:
    """Whether an error reply (as glide words it: its own text, then the server's) says the
    server cannot serve now, rather than that it refused the request."""
    lowered = message.lower()
    words = lowered.replace(":", " ").replace("-", " ").split()
    return _CLIENT_OVERLOAD in lowered or not _TRANSIENT_REPLIES.isdisjoint(words)


async def _per_bucket(
    call: Callable[[int], Coroutine[Any, Any, None]], buckets: Iterable[int]
) -> None:
    """``call(bucket)`` for each bucket: in parallel when there are several (a cluster's buckets
    are on different nodes). A failure is raised as the store's own error (the first, with the
    group as its cause), never as an ``ExceptionGroup``: the ``RemoteStore`` contract."""
    chosen = list(buckets)
    if len(chosen) == 1:
        await call(chosen[0])
        return
    try:
        async with anyio.create_task_group() as group:
            for bucket in chosen:
                group.start_soon(call, bucket)
    except BaseExceptionGroup as group_error:
        failures, others = group_error.split(StoreError)
        if failures is None or others is not None:
            raise  # a cancellation or a bug among them: not the store's error to report
        first: BaseException = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group_error


class _Publication:
    """Invalidations waiting to go out as one message (see ``RedisStore.publish_invalidation``)."""

    __slots__ = ("clear", "failure", "keys", "sent", "tags")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.tags: set[str] = set()
        self.clear = False
        self.sent = anyio.Event()
        #: Why sending failed (None: sent, or not yet).
        self.failure: str | None = None

    def add(self, keys: Iterable[str], tags: Iterable[str], clear: bool) -> None:
        self.keys.update(keys)
        self.tags.update(tags)
        self.clear = self.clear or clear


class RedisStore(OpenedOnce):
    """A :class:`~rgruntime.stores.RemoteStore` on Redis (standalone) or a Redis Cluster."""

    capabilities: frozenset[str] = CAPABILITIES

    def __init__(self, config: RedisStoreConfig | RedisClusterStoreConfig) -> None:
        self._config = config
        self.cluster = isinstance(config, RedisClusterStoreConfig)
        self.kind = "redis_cluster" if self.cluster else "redis"
        self.prefix = config.prefix
        self.instance_id = secrets.token_hex(8)
        self._keys = Keyspace(config.prefix, config.buckets)
        self._timeout = config.timeout
        self._client: Client | None = None
        # Publication coalescing (publish_invalidation): the one being filled, the one sending.
        self._next_publication: _Publication | None = None
        self._sending: anyio.Lock | None = None
        self._scripts = {
            name: Script(code)  # type: ignore[no-untyped-call,unused-ignore]
            for name, code in (
                ("set", SET_SCRIPT),
                ("delete", DELETE_SCRIPT),
                ("invalidate", INVALIDATE_SCRIPT),
                ("release", RELEASE_SCRIPT),
                ("edges", ADD_EDGES_SCRIPT),
            )
        }
        addresses = (
            config.nodes if isinstance(config, RedisClusterStoreConfig) else (config.address,)
        )
        where = ",".join(map(str, addresses))
        self._description = f"{self.kind} {where} prefix {config.prefix!r}"
        # Concurrent gets and sets of one round go as one command (stores/coalescing.py).
        # A cluster's batch spans nodes: after an outage its requests go again one by one, so
        # that one node down does not fail the keys of the others.
        self._reads: Coalescer[str, bytes | None] = Coalescer(
            self._get_batch, failure_of(self._description, "get"), retry_alone=self.cluster
        )
        self._writes: Coalescer[_Write, None] = Coalescer(
            self._set_batch,
            failure_of(self._description, "set"),
            retry_alone=self.cluster,
            resend_interrupted=False,  # sent again, a set would land after later deletes
        )

    def __repr__(self) -> str:
        return f"<RedisStore {self._description}>"

    # -- lifetime ------------------------------------------------------------------------------

    def _client_config(
        self, subscribe: Iterable[str] = ()
    ) -> GlideClientConfiguration | GlideClusterClientConfiguration:
        config = self._config
        credentials = (
            ServerCredentials(password=config.password, username=config.username)
            if config.password is not None
            else None
        )
        # The client's own deadline is what bounds each command (see _call).
        request_timeout = math.ceil(self._timeout * 1000)
        channels = set(subscribe)
        if isinstance(config, RedisClusterStoreConfig):
            return GlideClusterClientConfiguration(
                [NodeAddress(node.host, node.port) for node in config.nodes],
                use_tls=config.tls,
                credentials=credentials,
                read_from=ReadFrom.PREFER_REPLICA
                if config.read_from_replicas
                else ReadFrom.PRIMARY,
                request_timeout=request_timeout,
                pubsub_subscriptions=_subscriptions(GlideClusterClientConfiguration, channels),
            )
        return GlideClientConfiguration(
            [NodeAddress(config.address.host, config.address.port)],
            use_tls=config.tls,
            credentials=credentials,
            database_id=config.db,
            request_timeout=request_timeout,
            pubsub_subscriptions=_subscriptions(GlideClientConfiguration, channels),
        )

    async def _create_client(self, subscribe: Iterable[str] = ()) -> Client:
        config = self._client_config(subscribe)
        # Connecting is not a command: glide's request timeout does not bound it, fail_after does.
        try:
            with anyio.fail_after(self._timeout):
                if isinstance(config, GlideClusterClientConfiguration):
                    return await self._call("open", lambda: GlideClusterClient.create(config))
                return await self._call("open", lambda: GlideClient.create(config))
        except TimeoutError as error:
            raise self._no_answer("open") from error

    async def __aenter__(self) -> Self:
        self._open_once()
        self._client = await self._create_client()
        self._sending = anyio.Lock()
        return self

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
                await client.close()

    # -- calls ---------------------------------------------------------------------------------

    def _no_answer(self, operation: str) -> StoreUnavailableError:
        return StoreUnavailableError(
            self._description, operation, f"no answer within {self._timeout:g} s"
        )

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, with every failure to reach Redis made one error.

        What bounds a command is glide's own ``request_timeout`` (the store's ``timeout``): it
        answers a frozen (SIGSTOPped) or dead server with its ``TimeoutError`` or
        ``ConnectionError``, both ``GlideError``s (tests/stores/test_failures.py). A per-call
        ``anyio.fail_after`` bounded it too, but cost a third of a GET's time with 100 tasks
        (``python -m benchmarks stores``, docs/stores.md).
        """
        try:
            return await call()
        except GlideTimeoutError as error:
            raise self._no_answer(operation) from error
        except ConfigurationError as error:
            raise StoreError(f"{self._description}: {operation}: {error}") from error
        except RequestError as error:
            if type(error) is RequestError and not _transient(str(error)):
                # The server answered, and refused (a value or argument it will not take):
                # not an outage, and sending it again would be refused again.
                raise StoreError(f"{self._description}: {operation} refused: {error}") from error
            raise StoreUnavailableError(self._description, operation, str(error)) from error
        except (GlideError, OSError) as error:
            raise StoreUnavailableError(self._description, operation, str(error)) from error

    @property
    def _connected(self) -> Client:
        if self._client is None:
            raise StoreUnavailableError(
                self._description, "call", "the store is not open (use `async with store:`)"
            )
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[str | bytes]) -> Any:
        client = self._connected
        script = self._scripts[name]
        return await self._call(name, lambda: client.invoke_script(script, keys=keys, args=args))

    # -- entries -------------------------------------------------------------------------------

    async def ping(self) -> float:
        client = self._connected
        started = time.perf_counter()
        await self._call("ping", client.ping)
        return time.perf_counter() - started

    async def get(self, key: str) -> bytes | None:
        """The envelope under ``key``; concurrent gets of one round go as one ``MGET``
        (:mod:`~rgruntime.stores.coalescing`)."""
        key = check_key(key)
        self._connected  # noqa: B018 -- fail at once if the store is not open
        return await self._reads.submit(self._keys.entry(key))

    async def _get_batch(self, names: list[str]) -> Sequence[bytes | None]:
        client = self._connected
        if len(names) == 1:
            name = names[0]
            return [await self._call("get", lambda: client.get(name))]
        many: list[str | bytes] = list(names)
        # The cluster client splits a cross-slot MGET by slot by itself.
        return await self._call("get", lambda: client.mget(many))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        checked = check_keys(keys)
        if not checked:
            return []
        client = self._connected
        names: list[str | bytes] = [self._keys.entry(key) for key in checked]
        # The cluster client splits a cross-slot MGET by slot by itself.
        return await self._call("get_many", lambda: client.mget(names))

    async def set(
        self, key: str, envelope: bytes, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Write the entry, and publish its key's invalidation in the same script: other
        processes hear of the write once it is there, and a ``publish_invalidation(keys=[key])``
        that follows in the same task (what a layer does after every write) has nothing left to
        send. A write then costs one round trip instead of two. Concurrent sets of one round go
        as one script per bucket, publishing one message (:mod:`~rgruntime.stores.coalescing`)."""
        key, envelope, ttl, tag_list = check_write(key, envelope, ttl, tags)
        _published_by_write.set(None)
        self._connected  # noqa: B018 -- fail at once if the store is not open
        await self._writes.submit(_Write(key, envelope, _ms(ttl), tag_list))
        _published_by_write.set((self.instance_id, key))

    async def _set_batch(self, writes: list[_Write]) -> Sequence[None]:
        by_bucket: defaultdict[int, list[_Write]] = defaultdict(list)
        for write in writes:
            by_bucket[self._keys.bucket_of(write.key)].append(write)

        async def set_bucket(bucket: int) -> None:
            await self._set_bucket(bucket, by_bucket[bucket])

        await _per_bucket(set_bucket, by_bucket)
        return [None] * len(writes)

    async def _set_bucket(self, bucket: int, writes: list[_Write]) -> None:
        keys = frozenset(write.key for write in writes)
        message = encode_invalidation(Invalidation(keys=keys, origin=self.instance_id))
        names = [self._keys.tag_index(bucket)]
        arguments: list[str | bytes] = [self._keys.bucket_tag(bucket), self._keys.channel, message]
        for write in writes:
            names.append(self._keys.entry(write.key))
            arguments += (write.key, write.envelope, str(write.ttl_ms), str(len(write.tags)))
            arguments += write.tags
        await self._script("set", names, arguments)

    def _by_bucket(self, items: Iterable[str], of: Callable[[str], int]) -> dict[int, list[str]]:
        grouped: defaultdict[int, list[str]] = defaultdict(list)
        for item in items:
            grouped[of(item)].append(item)
        return grouped

    async def delete(self, keys: Iterable[str]) -> int:
        checked = check_keys(keys)
        _published_by_write.set(None)
        async with self._writes.barrier():  # in call order with the sets
            return await self._delete(checked)

    async def _delete(self, checked: list[str]) -> int:
        removed = 0
        for bucket, bucket_keys in self._by_bucket(
            dict.fromkeys(checked), self._keys.bucket_of
        ).items():
            removed += int(
                await self._script(
                    "delete",
                    [self._keys.tag_index(bucket)],
                    [self._keys.bucket_tag(bucket), *bucket_keys],
                )
            )
        return removed

    async def invalidate_tags(self, tags: Iterable[str]) -> Sequence[str] | None:
        tag_list = check_tag_list(tags)
        _published_by_write.set(None)
        if not tag_list:
            return []
        async with self._writes.barrier():  # in call order with the sets
            return await self._invalidate_tags(tag_list)

    async def _invalidate_tags(self, tag_list: list[str]) -> list[str]:
        removed: list[str] = []

        async def invalidate_bucket(bucket: int) -> None:
            keys = await self._script(
                "invalidate",
                [self._keys.tag_index(bucket)],
                [self._keys.bucket_tag(bucket), *tag_list],
            )
            removed.extend(key.decode() for key in keys)

        # One atomic script per bucket; the buckets in parallel (each is one slot, often on
        # different nodes).
        await _per_bucket(invalidate_bucket, range(self._keys.buckets))
        return removed

    async def _scan_names(self, match: str) -> AsyncIterator[bytes]:
        client = self._connected
        if isinstance(client, GlideClusterClient):
            cluster_cursor = ClusterScanCursor()  # type: ignore[no-untyped-call,unused-ignore]
            while not cluster_cursor.is_finished():
                cluster_cursor, names = await self._call(  # type: ignore[assignment,unused-ignore]
                    "scan",
                    lambda at=cluster_cursor: client.scan(at, match=match, count=_SCAN_COUNT),  # type: ignore[misc]
                )
                for name in names:
                    yield name
            return
        cursor: bytes | str = "0"
        while True:
            cursor, names = await self._call(  # type: ignore[assignment,unused-ignore]
                "scan",
                lambda at=cursor: client.scan(at, match=match, count=_SCAN_COUNT),  # type: ignore[misc]
            )
            for name in names:
                yield name
            if cursor in (b"0", "0"):
                return

    async def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        pattern = check_key(pattern, "pattern")
        async for name in self._scan_names(self._keys.entry_match(pattern)):
            key = self._keys.user_key(name.decode(errors="surrogateescape"), pattern)
            if key is not None:
                yield key

    async def clear(self) -> None:
        client = self._connected
        _published_by_write.set(None)
        async with self._writes.barrier():  # in call order with the sets
            await self._clear(client)

    async def _clear(self, client: Client) -> None:
        batch: list[str | bytes] = []
        async for name in self._scan_names(self._keys.own_keys_match()):
            if self._keys.cleared_by_clear(name.decode(errors="surrogateescape")):
                batch.append(name)
            if len(batch) >= _SCAN_COUNT:
                await self._unlink(client, batch)
                batch = []
        if batch:
            await self._unlink(client, batch)

    async def _unlink(self, client: Client, names: list[str | bytes]) -> None:
        # One name per call in a cluster would be slow; UNLINK across slots is split by the client.
        await self._call("clear", lambda: client.unlink(names))

    # -- leases --------------------------------------------------------------------------------

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        key = check_key(key)
        ttl = check_lease_ttl(ttl)
        token = secrets.token_hex(16)
        client = self._connected
        name = self._keys.lease(key)
        answer = await self._call(
            "acquire_lease",
            lambda: client.set(
                name,
                token,
                conditional_set=ConditionalChange.ONLY_IF_DOES_NOT_EXIST,
                expiry=ExpirySet(ExpiryType.MILLSEC, _ms(ttl)),
            ),
        )
        return token if answer is not None else None

    async def release_lease(self, key: str, token: str) -> bool:
        key = check_key(key)
        released = await self._script("release", [self._keys.lease(key)], [token])
        return bool(released)

    async def lease_active(self, key: str) -> bool:
        key = check_key(key)
        client = self._connected
        name: list[str | bytes] = [self._keys.lease(key)]
        return bool(await self._call("lease_active", lambda: client.exists(name)))

    # -- invalidation channel ------------------------------------------------------------------

    async def publish_invalidation(
        self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), clear: bool = False
    ) -> None:
        """Publish, unless this task's last change was a ``set`` of the one key named (its
        script published it already), coalesced with concurrent callers: while one message is in
        flight, the invalidations of every caller that arrives are gathered into the next one,
        sent by the first of them when the one in flight is answered. Each caller returns once a
        message holding its invalidation was published (or raises if that failed), as if it had
        published alone, and subscribers drop the same keys and tags. The sender's wait and send
        are shielded from its own cancellation (bounded by two request timeouts): the others'
        invalidations depend on it.
        """
        checked_keys, checked_tags = check_keys(keys), check_tag_list(tags)
        client, sending = self._connected, self._sending
        published = _published_by_write.get()
        _published_by_write.set(None)
        if (
            published is not None
            and published[0] == self.instance_id
            and not checked_tags
            and not clear
            and checked_keys
            and all(key == published[1] for key in checked_keys)
        ):
            return  # this task's write of that key published it already
        assert sending is not None  # set with the client
        waiting = self._next_publication
        if waiting is not None:
            waiting.add(checked_keys, checked_tags, clear)
            await waiting.sent.wait()
            if waiting.failure is not None:
                raise StoreUnavailableError(
                    self._description, "publish_invalidation", waiting.failure
                )
            return
        publication = self._next_publication = _Publication()
        publication.add(checked_keys, checked_tags, clear)
        try:
            with anyio.CancelScope(shield=True):
                async with sending:
                    # From here on, later callers gather into a new publication.
                    self._next_publication = None
                    message = encode_invalidation(
                        Invalidation(
                            keys=frozenset(publication.keys),
                            tags=frozenset(publication.tags),
                            clear=publication.clear,
                            origin=self.instance_id,
                        )
                    )
                    channel = self._keys.channel
                    await self._call(
                        "publish_invalidation", lambda: client.publish(message, channel)
                    )
        except BaseException as error:
            publication.failure = getattr(error, "reason", None) or repr(error)[:200]
            raise
        finally:
            if self._next_publication is publication:  # failed before it was closed
                self._next_publication = None
            publication.sent.set()

    def invalidations(self) -> AbstractAsyncContextManager[AsyncIterator[Invalidation]]:
        return self._subscription()

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[Invalidation]]:
        self._connected  # noqa: B018 -- fail early if the store is not open
        # A client of its own: glide takes subscriptions at creation, and a subscribed
        # connection serves nothing else.
        subscriber = await self._create_client(subscribe=(self._keys.channel,))
        try:
            connections = await _connection_ids(subscriber, self._call)
            yield _Messages(subscriber, self._call, connections)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
                await subscriber.close()

    # -- dependency edges ----------------------------------------------------------------------

    async def add_edges(
        self, dependent: str, dependencies: Iterable[str], *, ttl: float | None = None
    ) -> None:
        dependent = check_key(dependent, "dependent")
        ttl = check_ttl(ttl)
        for dependency in dict.fromkeys(check_keys(dependencies, field="dependencies")):
            await self._script("edges", [self._keys.edges(dependency)], [str(_ms(ttl)), dependent])

    async def dependents_of(self, key: str) -> frozenset[str]:
        key = check_key(key)
        client = self._connected
        name = self._keys.edges(key)
        members = await self._call("dependents_of", lambda: client.smembers(name))
        return frozenset(member.decode() for member in members)
