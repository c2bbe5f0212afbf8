"""Remote stores behind a layer: Redis, Redis Cluster, Memcached, and an in-process reference.

Everything here works on serialized envelopes (:class:`Serializer`); the layer encodes before it
changes anything and decodes what it reads, counting an :class:`UndecodableEntryError` as a miss.
Open a store with ``async with make_store({"type": "redis", "url": ...}) as store:``. The store
modules import their client library lazily (extras ``rgruntime[redis]``, ``rgruntime[memcached]``).
See docs/stores.md.
"""

from __future__ import annotations

from rgruntime.stores.base import (
    CAPABILITIES,
    EXACT_TAGS,
    INVALIDATION_CHANNEL,
    SCAN,
    Invalidation,
    RemoteStore,
)
from rgruntime.stores.config import (
    MemcachedStoreConfig,
    MemoryStoreConfig,
    RedisClusterStoreConfig,
    RedisStoreConfig,
    ServerAddress,
    make_store,
    parse_store_config,
)
from rgruntime.stores.errors import (
    StoreError,
    StoreUnavailableError,
    UndecodableEntryError,
    UnsupportedOperationError,
)
from rgruntime.stores.lease import wait_for_release
from rgruntime.stores.memory import MemoryServer, MemoryStore
from rgruntime.stores.serialization import (
    ENVELOPE_VERSION,
    Codec,
    CodecRegistry,
    Envelope,
    Serializer,
    SignedPickle,
    attrs_codec,
    dataclass_codec,
    pydantic_codec,
)

__all__ = [
    "CAPABILITIES",
    "ENVELOPE_VERSION",
    "EXACT_TAGS",
    "INVALIDATION_CHANNEL",
    "SCAN",
    "Codec",
    "CodecRegistry",
    "Envelope",
    "Invalidation",
    "MemcachedStoreConfig",
    "MemoryServer",
    "MemoryStore",
    "MemoryStoreConfig",
    "RedisClusterStoreConfig",
    "RedisStoreConfig",
    "RemoteStore",
    "Serializer",
    "ServerAddress",
    "SignedPickle",
    "StoreError",
    "StoreUnavailableError",
    "UndecodableEntryError",
    "UnsupportedOperationError",
    "attrs_codec",
    "dataclass_codec",
    "make_store",
    "parse_store_config",
    "pydantic_codec",
    "wait_for_release",
]
