"""The caching guide's cache_backend dicts, and the errors of bad ones (naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from rgruntime import ConfigError
from rgruntime.stores import (
    MemcachedStoreConfig,
    MemoryStore,
    RedisClusterStoreConfig,
    RedisStoreConfig,
    ServerAddress,
    make_store,
    parse_store_config,
)
from rgruntime.stores.memcached import MemcachedStore
from rgruntime.stores.redis import RedisStore


def test_guide_redis() -> None:
    config = parse_store_config(
        {"type": "redis", "url": "redis://localhost:6379", "db": 0, "prefix": "rg:"}
    )
    assert config == RedisStoreConfig(address=ServerAddress("localhost", 6379), db=0, prefix="rg:")
    assert isinstance(make_store({"type": "redis", "url": "redis://localhost:6379"}), RedisStore)


def test_guide_memcached() -> None:
    config = parse_store_config(
        {"type": "memcached", "servers": ["localhost:11211"], "prefix": "rg:"}
    )
    assert config == MemcachedStoreConfig(
        servers=(ServerAddress("localhost", 11211),), prefix="rg:"
    )
    assert isinstance(make_store(config), MemcachedStore)


def test_guide_cluster() -> None:
    config = parse_store_config(
        {
            "type": "redis_cluster",
            "nodes": ["redis://node1:6379", "redis://node2:6379", "redis://node3:6379"],
            "read_from_replicas": True,
        }
    )
    assert isinstance(config, RedisClusterStoreConfig)
    assert [str(node) for node in config.nodes] == ["node1:6379", "node2:6379", "node3:6379"]
    assert config.read_from_replicas
    assert config.buckets == 16
    store = make_store(config)
    assert isinstance(store, RedisStore)
    assert store.kind == "redis_cluster"


def test_url_details() -> None:
    config = parse_store_config(
        {"type": "redis", "url": "rediss://user:p%40ss@cache.example:6380/3", "timeout": 0.5}
    )
    assert isinstance(config, RedisStoreConfig)
    assert (config.address, config.db, config.username, config.password, config.tls) == (
        ServerAddress("cache.example", 6380),
        3,
        "user",
        "p@ss",
        True,
    )
    assert config.timeout == 0.5
    assert parse_store_config({"type": "redis", "url": "redis://h"}).address.port == 6379  # type: ignore[union-attr]


def test_memory() -> None:
    assert isinstance(make_store({"type": "memory"}), MemoryStore)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ("redis://localhost", "cache_backend"),
        ({"url": "redis://h"}, "cache_backend.type"),
        ({"type": "mongo"}, "cache_backend.type"),
        ({"type": "redis"}, "cache_backend.url"),
        ({"type": "redis", "url": "http://h:6379"}, "cache_backend.url"),
        ({"type": "redis", "url": "redis://h:99999"}, "cache_backend.url"),
        ({"type": "redis", "url": "redis://h/x"}, "cache_backend.url"),
        ({"type": "redis", "url": 6379}, "cache_backend.url"),
        ({"type": "redis", "url": "redis://h", "db": -1}, "cache_backend.db"),
        ({"type": "redis", "url": "redis://h", "db": "0"}, "cache_backend.db"),
        ({"type": "redis", "url": "redis://h/1", "db": 2}, "cache_backend.db"),
        ({"type": "redis", "url": "redis://h", "prefix": ""}, "cache_backend.prefix"),
        ({"type": "redis", "url": "redis://h", "prefix": "a{b}"}, "cache_backend.prefix"),
        ({"type": "redis", "url": "redis://h", "prefix": "rg*"}, "cache_backend.prefix"),
        ({"type": "redis", "url": "redis://h", "prefix": "r g"}, "cache_backend.prefix"),
        ({"type": "redis", "url": "redis://h", "timeout": 0}, "cache_backend.timeout"),
        ({"type": "redis", "url": "redis://h", "buckets": 0}, "cache_backend.buckets"),
        ({"type": "redis", "url": "redis://h", "nodes": []}, "cache_backend.nodes"),
        ({"type": "redis_cluster"}, "cache_backend.nodes"),
        ({"type": "redis_cluster", "nodes": "redis://h"}, "cache_backend.nodes"),
        ({"type": "redis_cluster", "nodes": []}, "cache_backend.nodes"),
        ({"type": "redis_cluster", "nodes": ["redis://a", "h:1"]}, "cache_backend.nodes[1]"),
        ({"type": "redis_cluster", "nodes": ["redis://a/2"]}, "cache_backend.nodes[0]"),
        (
            {"type": "redis_cluster", "nodes": ["redis://a"], "read_from_replicas": "yes"},
            "cache_backend.read_from_replicas",
        ),
        ({"type": "memcached"}, "cache_backend.servers"),
        ({"type": "memcached", "servers": "localhost:11211"}, "cache_backend.servers"),
        ({"type": "memcached", "servers": ["localhost:x"]}, "cache_backend.servers[0]"),
        ({"type": "memcached", "servers": ["a:1", ":1"]}, "cache_backend.servers[1]"),
        ({"type": "memcached", "servers": ["a:1"], "pool_size": 0}, "cache_backend.pool_size"),
        ({"type": "memcached", "servers": ["a:1"], "url": "redis://h"}, "cache_backend.url"),
    ],
)
def test_bad_config_names_the_field(options: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_store(options)
    assert caught.value.field == field
    assert caught.value.accepted
