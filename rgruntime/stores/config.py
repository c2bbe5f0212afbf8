"""The caching guide's ``cache_backend`` dicts, validated into store settings; :func:`make_store`.

Accepted (the guide's three forms, plus optional settings)::

    {"type": "redis", "url": "redis://localhost:6379", "db": 0, "prefix": "rg:"}
    {"type": "memcached", "servers": ["localhost:11211"], "prefix": "rg:"}
    {"type": "redis_cluster", "nodes": ["redis://node1:6379", ...], "read_from_replicas": True}
    {"type": "memory", "prefix": "rg:"}                      # in-process, for tests

Optional everywhere: ``timeout`` (seconds per remote call, default 2); Redis and Redis Cluster:
``buckets`` (hash-tag buckets, see docs/stores.md; default 1 standalone, 16 cluster); Memcached:
``pool_size`` (connections per server and threads in flight, default 16). A bad value raises
:class:`~rgruntime.ConfigError` naming the field (``cache_backend.url``), the value and what is
accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs

from rgruntime.errors import ConfigError
from rgruntime.extras import require_extra
from rgruntime.stores.base import RemoteStore
from rgruntime.validation import boolean, check_known_keys, positive_int

__all__ = [
    "DEFAULT_PREFIX",
    "MemcachedStoreConfig",
    "MemoryStoreConfig",
    "RedisClusterStoreConfig",
    "RedisStoreConfig",
    "ServerAddress",
    "make_store",
    "parse_store_config",
    "require_client",
]

DEFAULT_PREFIX: Final = "rg:"
DEFAULT_TIMEOUT: Final = 2.0
_MAX_BUCKETS: Final = 16384  # one per cluster slot at most
_WHERE: Final = "cache_backend"


@attrs.frozen
class ServerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@attrs.frozen(kw_only=True)
class _RedisAccess:
    """What every Redis store needs besides where the servers are."""

    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    # Kept out of repr(): configurations end up in logs and error messages.
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False
    #: Seconds each remote call may take before it raises StoreUnavailableError.
    timeout: float = DEFAULT_TIMEOUT


@attrs.frozen(kw_only=True)
class RedisStoreConfig(_RedisAccess):
    """A standalone Redis server (``{"type": "redis", ...}``)."""

    address: ServerAddress
    db: int = 0
    #: Hash-tag buckets (docs/stores.md): one keeps every operation atomic.
    buckets: int = 1


@attrs.frozen(kw_only=True)
class RedisClusterStoreConfig(_RedisAccess):
    """A Redis Cluster (``{"type": "redis_cluster", ...}``)."""

    nodes: tuple[ServerAddress, ...]
    read_from_replicas: bool = False
    #: Hash-tag buckets: the slots a store spreads over (a tag invalidation runs one per bucket).
    buckets: int = 16


@attrs.frozen(kw_only=True)
class MemcachedStoreConfig:
    """Memcached servers (``{"type": "memcached", ...}``); ``pool_size`` connections per server."""

    servers: tuple[ServerAddress, ...]
    prefix: str = DEFAULT_PREFIX
    timeout: float = DEFAULT_TIMEOUT
    pool_size: int = 16


@attrs.frozen(kw_only=True)
class MemoryStoreConfig:
    """The in-process reference store (``{"type": "memory"}``)."""

    prefix: str = DEFAULT_PREFIX


StoreConfig = RedisStoreConfig | RedisClusterStoreConfig | MemcachedStoreConfig | MemoryStoreConfig
_CONFIG_TYPES: Final = (
    RedisStoreConfig,
    RedisClusterStoreConfig,
    MemcachedStoreConfig,
    MemoryStoreConfig,
)


# -- field parsers -------------------------------------------------------------------------------


def _prefix(value: object, field: str) -> str:
    # Braces would change which hash slot a key lands in; glob characters would let clear() and
    # scan() reach beyond the prefix; spaces and control characters are invalid memcached keys.
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 64
        or any(c in "{}*?[]\\" or not c.isprintable() or c.isspace() for c in value)
    ):
        raise ConfigError(
            field,
            value,
            "a non-empty key prefix of at most 64 printable characters without spaces, "
            "braces or glob characters, such as 'rg:'",
        )
    return value


def _timeout(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise ConfigError(field, value, "seconds per remote call: a number above 0, at most 300")
    return float(value)


def _buckets(value: object, field: str) -> int:
    count = positive_int(value, field)
    if count > _MAX_BUCKETS:
        raise ConfigError(field, value, f"a whole number from 1 to {_MAX_BUCKETS}")
    return count


def _db(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 15:
        raise ConfigError(field, value, "a Redis database number from 0 to 15")
    return value


def _port(text: str | int | None, value: object, field: str, default: int) -> int:
    if text is None:
        return default
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(field, value, "a port from 1 to 65535")
    return port


_REDIS_URL_ACCEPTED = "a URL such as 'redis://localhost:6379', 'redis://:password@host:6379/0'"


@attrs.frozen
class _RedisURL:
    address: ServerAddress
    db: int | None
    username: str | None
    password: str | None
    tls: bool


def _redis_url(value: object, field: str) -> _RedisURL:
    if not isinstance(value, str):
        raise ConfigError(field, value, _REDIS_URL_ACCEPTED)
    try:
        parts = urlsplit(value)
        port_text = parts.port
    except ValueError:
        raise ConfigError(field, value, _REDIS_URL_ACCEPTED) from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or parts.query:
        raise ConfigError(field, value, _REDIS_URL_ACCEPTED + " (schemes: redis, rediss)")
    db: int | None = None
    path = parts.path.strip("/")
    if path:
        if not path.isdigit():
            raise ConfigError(field, value, _REDIS_URL_ACCEPTED + " (the path is a db number)")
        db = _db(int(path), field)
    return _RedisURL(
        ServerAddress(parts.hostname, _port(port_text, value, field, 6379)),
        db,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        parts.scheme == "rediss",
    )


def _memcached_server(value: object, field: str) -> ServerAddress:
    accepted = "'host:port' such as 'localhost:11211'"
    if not isinstance(value, str) or not value or value.count(":") > 1:
        raise ConfigError(field, value, accepted)
    host, _, port = value.partition(":")
    if not host or " " in host:
        raise ConfigError(field, value, accepted)
    return ServerAddress(host, _port(port or None, value, field, 11211))


def _non_empty_list(value: object, field: str, what: str) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(field, value, f"a non-empty list of {what}")
    return list(value)


# -- the dict forms ------------------------------------------------------------------------------

_COMMON: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "prefix": _prefix,
    "timeout": _timeout,
}


def _options(
    options: Mapping[str, Any], parsers: Mapping[str, Callable[[object, str], Any]]
) -> dict[str, Any]:
    known = {"type": None, **_COMMON, **parsers}
    check_known_keys(options, known, _WHERE)
    parsed: dict[str, Any] = {}
    for key, parse in {**_COMMON, **parsers}.items():
        if key in options:
            parsed[key] = parse(options[key], f"{_WHERE}.{key}")
    return parsed


def _parse_redis(options: Mapping[str, Any]) -> RedisStoreConfig:
    if "url" not in options:
        raise ConfigError(f"{_WHERE}.url", None, _REDIS_URL_ACCEPTED + " (required)")
    parsed = _options(options, {"url": _redis_url, "db": _db, "buckets": _buckets})
    url: _RedisURL = parsed.pop("url")
    db = parsed.pop("db", None)
    if db is not None and url.db is not None and db != url.db:
        raise ConfigError(
            f"{_WHERE}.db", db, f"the database of the url ({url.db}), or leave one of them out"
        )
    return RedisStoreConfig(
        address=url.address,
        db=db if db is not None else (url.db or 0),
        username=url.username,
        password=url.password,
        tls=url.tls,
        **parsed,
    )


def _parse_cluster(options: Mapping[str, Any]) -> RedisClusterStoreConfig:
    field = f"{_WHERE}.nodes"
    if "nodes" not in options:
        raise ConfigError(field, None, "a non-empty list of node URLs such as 'redis://node1:6379'")
    nodes = _non_empty_list(options["nodes"], field, "node URLs such as 'redis://node1:6379'")
    urls = [_redis_url(node, f"{field}[{i}]") for i, node in enumerate(nodes)]
    for i, url in enumerate(urls):
        if url.db:
            raise ConfigError(
                f"{field}[{i}]", nodes[i], "a node URL without a database: a cluster has only db 0"
            )
    if len({url.tls for url in urls}) > 1:
        raise ConfigError(field, nodes, "node URLs that all use redis:// or all use rediss://")
    parsed = _options(
        options,
        {"nodes": lambda value, where: value, "read_from_replicas": boolean, "buckets": _buckets},
    )
    del parsed["nodes"]
    return RedisClusterStoreConfig(
        nodes=tuple(dict.fromkeys(url.address for url in urls)),
        username=urls[0].username,
        password=urls[0].password,
        tls=urls[0].tls,
        **parsed,
    )


def _parse_memcached(options: Mapping[str, Any]) -> MemcachedStoreConfig:
    field = f"{_WHERE}.servers"
    if "servers" not in options:
        raise ConfigError(field, None, "a non-empty list of 'host:port' such as 'localhost:11211'")
    servers = _non_empty_list(options["servers"], field, "'host:port' such as 'localhost:11211'")
    addresses = tuple(
        dict.fromkeys(
            _memcached_server(server, f"{field}[{i}]") for i, server in enumerate(servers)
        )
    )
    parsed = _options(options, {"servers": lambda value, where: value, "pool_size": positive_int})
    del parsed["servers"]
    return MemcachedStoreConfig(servers=addresses, **parsed)


def _parse_memory(options: Mapping[str, Any]) -> MemoryStoreConfig:
    parsed = _options(options, {})
    parsed.pop("timeout", None)  # nothing remote to wait for
    return MemoryStoreConfig(**parsed)


_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any]], StoreConfig]]] = {
    "redis": _parse_redis,
    "redis_cluster": _parse_cluster,
    "memcached": _parse_memcached,
    "memory": _parse_memory,
}


def parse_store_config(options: object) -> StoreConfig:
    """The settings of the store ``options`` (a ``cache_backend`` dict, or settings) describe."""
    if isinstance(options, _CONFIG_TYPES):
        return options
    if not isinstance(options, Mapping):
        raise ConfigError(
            _WHERE, options, "a dict such as {'type': 'redis', 'url': 'redis://localhost:6379'}"
        )
    mapping = options
    kind = mapping.get("type")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise ConfigError(f"{_WHERE}.type", kind, f"one of {', '.join(map(repr, _PARSERS))}")
    return parse(mapping)


def require_client(config: StoreConfig) -> None:
    """Raise :class:`~rgruntime.extras.MissingExtraError` (naming the extra to install) when
    the client library of ``config``'s store is not installed."""
    if isinstance(config, RedisStoreConfig | RedisClusterStoreConfig):
        require_extra("redis", "a Redis cache_backend")
    elif isinstance(config, MemcachedStoreConfig):
        require_extra("memcached", "a Memcached cache_backend")


def make_store(options: object) -> RemoteStore:
    """A store for ``options``, not yet connected: open it with ``async with store:``."""
    config = parse_store_config(options)
    require_client(config)
    # Imported here: each store's client library is an optional extra (rgruntime[redis] /
    # rgruntime[memcached]); a dict naming another store must not need it.
    if isinstance(config, RedisStoreConfig | RedisClusterStoreConfig):
        from rgruntime.stores.redis import RedisStore

        return RedisStore(config)
    if isinstance(config, MemcachedStoreConfig):
        from rgruntime.stores.memcached import MemcachedStore

        return MemcachedStore(config)
    from rgruntime.stores.memory import MemoryStore

    return MemoryStore(prefix=config.prefix)
