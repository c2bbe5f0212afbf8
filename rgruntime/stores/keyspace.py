"""Where a Redis store keeps what: key names, hash-tag buckets, and the Lua scripts over them.

Every Redis key of a store starts with its prefix and a hash tag naming a *bucket*::

    rg:{3}e:<key>         the entry (a string: the envelope), with the entry's TTL
    rg:{3}g:<key>         the entry's tags (a set), same TTL
    rg:{3}t:<tag>         the keys of this bucket tagged <tag> (a set; TTL = the longest entry's)
    rg:{3}tags            the tags used in this bucket (a sorted set, for prefix lookups)
    rg:{3}l:<key>         the load lease of <key> (a token, with the lease's TTL)
    rg:{3}d:<key>         the keys computed from <key> (a set)
    rg:invalidations      the pub/sub channel of invalidations

A key's bucket is ``xxh3_64(key) % buckets``. All keys of one bucket share one hash slot, so a
Lua script can update an entry, its tag sets and the bucket's tag index atomically, in a cluster
too. Standalone Redis uses one bucket (every operation is atomic across the whole store); a
cluster spreads the store over ``buckets`` slots (16 by default), and a tag invalidation runs one
atomic script per bucket.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Final

import xxhash

__all__ = ["DELETE_SCRIPT", "INVALIDATE_SCRIPT", "RELEASE_SCRIPT", "SET_SCRIPT", "Keyspace"]


class Keyspace:
    """Key names of one store (``prefix``, ``buckets``)."""

    __slots__ = ("_bucket_tags", "_entry_re", "buckets", "channel", "prefix")

    def __init__(self, prefix: str, buckets: int) -> None:
        self.prefix = prefix
        self.buckets = buckets
        self.channel = f"{prefix}invalidations"
        self._bucket_tags = tuple(f"{prefix}{{{bucket}}}" for bucket in range(buckets))
        # The prefix holds no braces (checked by the config), so the first "}" closes the tag.
        self._entry_re = re.compile(re.escape(prefix) + r"\{[0-9]+\}e:(.*)", re.DOTALL)

    def bucket_of(self, key: str) -> int:
        if self.buckets == 1:
            return 0
        return xxhash.xxh3_64_intdigest(key.encode()) % self.buckets

    def bucket_tag(self, bucket: int) -> str:
        """``rg:{3}``: what every key name of ``bucket`` starts with."""
        return self._bucket_tags[bucket]

    def entry(self, key: str) -> str:
        return f"{self._bucket_tags[self.bucket_of(key)]}e:{key}"

    def lease(self, key: str) -> str:
        return f"{self._bucket_tags[self.bucket_of(key)]}l:{key}"

    def edges(self, key: str) -> str:
        return f"{self._bucket_tags[self.bucket_of(key)]}d:{key}"

    def tag_index(self, bucket: int) -> str:
        return f"{self._bucket_tags[bucket]}tags"

    def entry_match(self, pattern: str) -> str:
        """A SCAN MATCH glob for the entries of this store whose key matches ``pattern``."""
        return f"{self.prefix}{{*}}e:{pattern}"

    def own_keys_match(self) -> str:
        """A SCAN MATCH glob for every key name of this store (prefix followed by a bucket)."""
        return f"{self.prefix}{{*"

    def user_key(self, name: str, pattern: str) -> str | None:
        """The key of the entry named ``name`` if it matches ``pattern``, else ``None``.

        SCAN's glob is only a coarse filter (its ``*`` may run past the bucket's brace): this
        check is the exact one.
        """
        found = self._entry_re.fullmatch(name)
        if found is None:
            return None
        key = found.group(1)
        return key if fnmatch.fnmatchcase(key, pattern) else None

    def cleared_by_clear(self, name: str) -> bool:
        """Whether ``name`` is one of this store's key names (not another prefix's) that
        ``clear()`` removes: everything but the leases, which belong to loads in flight."""
        if not name.startswith(self.prefix + "{"):
            return False
        close = name.find("}", len(self.prefix) + 1)
        own = close > len(self.prefix) + 1 and name[len(self.prefix) + 1 : close].isdigit()
        return own and not name.startswith("l:", close + 1)


# Shared by the scripts: remove one entry with its tag memberships. ARGV[1] is the bucket's tag
# (``rg:{3}``); the script touches only keys of that bucket, hence of one hash slot.
_DROP: Final = """
local bucket = ARGV[1]
local function drop(key)
    local removed = redis.call('DEL', bucket .. 'e:' .. key)
    local tags_key = bucket .. 'g:' .. key
    for _, tag in ipairs(redis.call('SMEMBERS', tags_key)) do
        redis.call('SREM', bucket .. 't:' .. tag, key)
    end
    redis.call('DEL', tags_key)
    return removed
end
"""

#: Writes entries of one bucket. KEYS[1] the bucket's tag index, then each entry's name. ARGV:
#: bucket tag, invalidation channel and message (published once every entry is written: near
#: caches elsewhere drop their copies; an empty channel publishes nothing), then per entry: key,
#: envelope, TTL in ms (0: none), how many tags, the tags. A tag set lives as long as its
#: longest-lived entry; stale members (entries that expired) are dropped when the tag is
#: invalidated. Entries are written in order: a key written twice keeps the last.
SET_SCRIPT: Final = (
    _DROP
    + """
local at, entry = 4, 1
while at <= #ARGV do
    entry = entry + 1
    local key, envelope = ARGV[at], ARGV[at + 1]
    local ttl, tag_count = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
    drop(key)
    if ttl > 0 then
        redis.call('SET', KEYS[entry], envelope, 'PX', ttl)
    else
        redis.call('SET', KEYS[entry], envelope)
    end
    if tag_count > 0 then
        local tags_key = bucket .. 'g:' .. key
        for i = at + 4, at + 3 + tag_count do
            local tag = ARGV[i]
            local tag_set = bucket .. 't:' .. tag
            local existed = redis.call('EXISTS', tag_set)
            local left = redis.call('PTTL', tag_set)
            redis.call('SADD', tag_set, key)
            redis.call('ZADD', KEYS[1], 0, tag)
            redis.call('SADD', tags_key, tag)
            if ttl == 0 then
                redis.call('PERSIST', tag_set)
            elseif existed == 0 or (left >= 0 and left < ttl) then
                redis.call('PEXPIRE', tag_set, ttl)
            end
        end
        if ttl > 0 then redis.call('PEXPIRE', tags_key, ttl) end
    end
    at = at + 4 + tag_count
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return entry - 1
"""
)

#: KEYS[1] the bucket's tag index (for routing). ARGV: bucket tag, then the keys. Returns how many
#: entries were present.
DELETE_SCRIPT: Final = (
    _DROP
    + """
local removed = 0
for i = 2, #ARGV do removed = removed + drop(ARGV[i]) end
return removed
"""
)

#: KEYS[1] the bucket's tag index. ARGV: bucket tag, then the tags. Each tag selects itself and
#: every tag below it (``tag:...``, through the sorted index's lexical range), never ``tagX``.
#: Returns the keys of the entries that were present.
INVALIDATE_SCRIPT: Final = (
    _DROP
    + """
local removed = {}
for i = 2, #ARGV do
    local tag = ARGV[i]
    local selected = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. tag .. ':', '(' .. tag .. ';')
    table.insert(selected, tag)
    for _, each in ipairs(selected) do
        local tag_set = bucket .. 't:' .. each
        for _, key in ipairs(redis.call('SMEMBERS', tag_set)) do
            if drop(key) == 1 then table.insert(removed, key) end
        end
        redis.call('DEL', tag_set)
        redis.call('ZREM', KEYS[1], each)
    end
end
return removed
"""
)

#: KEYS[1] the lease, ARGV[1] the token: delete only if the token still holds it.
RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS[1] the dependency's edge set, ARGV[1] TTL in ms (0: none), then the dependents.
ADD_EDGES_SCRIPT: Final = """
local ttl = tonumber(ARGV[1])
local existed = redis.call('EXISTS', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
if ttl == 0 then
    redis.call('PERSIST', KEYS[1])
elseif existed == 0 or (left >= 0 and left < ttl) then
    redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""
