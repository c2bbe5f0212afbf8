"""A dictionary that never rebuilds one big table: the event loop's defence against dict resizes.

A ``dict`` grows by rebuilding its whole table when it fills up: at 87,000 keys that took 3.4 ms on
this project's machine, at 175,000 keys 6.8 ms, at 700,000 keys 28 ms, all of it holding the GIL.
Four maps of 100,000 keys growing in step (the semantic cache's key, label, text and partition
maps) stood the event loop still for 11 ms at once. :class:`ShardedDict` is one plain dict while
small; past 1,024 keys it spreads them by hash over 256 plain dicts (once: 0.25 ms here; at 8,192
keys it took 2.5 ms, and four maps splitting in step made a 10 ms gap again), so that each later
resize rebuilds 1/256 of the table: under 0.2 ms up to ~10 million keys. A small map costs what a
dict costs (many partitions of a few keys each stay small). The price is one hash and one
list index per operation (~50-100 ns, in Python), so it belongs in maps that grow large beside the
event loop, not on a microsecond hot path.

The shards hold only what is put in them: a map of strings and ints stays untracked by the garbage
collector, like a plain dict of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from itertools import chain
from typing import Final, TypeVar, overload

__all__ = ["ShardedDict"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_SHARDS: Final = 256
#: Keys past which the one dict is split into the shards.
SPLIT_AT: Final = 1024
_ABSENT: Final = object()


class ShardedDict(MutableMapping[K, V]):
    """A mutable mapping kept in one dict while small, then in 256 dicts chosen by the key's hash
    (see the module). ``split_at`` sets the size at which it splits.

    Unlike a dict, iteration follows insertion order only until the split, and ``popitem``
    removes some item, not the last one. Safe to read from one thread while another writes
    (every operation reads the list of shards once: a split or ``clear`` swaps it whole).
    """

    __slots__ = ("_shards", "_size", "_split_at")

    def __init__(
        self, items: Mapping[K, V] | Iterable[tuple[K, V]] = (), *, split_at: int = SPLIT_AT
    ) -> None:
        # One shard while small: len(shards) - 1 is then a mask of 0, and every operation is the
        # same expression before and after the split.
        self._shards: list[dict[K, V]] = [{}]
        self._size = 0
        self._split_at = split_at
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value

    @classmethod
    def fromkeys(cls, keys: Iterable[K], value: V) -> ShardedDict[K, V]:
        mapping: ShardedDict[K, V] = cls()
        for key in keys:
            mapping[key] = value
        return mapping

    def __repr__(self) -> str:
        return f"ShardedDict({dict(self.items())!r})"

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __contains__(self, key: object) -> bool:
        shards = self._shards
        return key in shards[hash(key) & (len(shards) - 1)]

    def __getitem__(self, key: K) -> V:
        shards = self._shards
        return shards[hash(key) & (len(shards) - 1)][key]

    def __setitem__(self, key: K, value: V) -> None:
        shards = self._shards
        shard = shards[hash(key) & (len(shards) - 1)]
        size = len(shard)
        shard[key] = value
        if len(shard) != size:
            self._size += 1
            if self._size > self._split_at and len(shards) == 1:
                self._split()

    def _split(self) -> None:
        (whole,) = self._shards
        mask = _SHARDS - 1
        shards: list[dict[K, V]] = [{} for _ in range(_SHARDS)]
        for key, value in whole.items():
            shards[hash(key) & mask][key] = value
        self._shards = shards

    def __delitem__(self, key: K) -> None:
        shards = self._shards
        del shards[hash(key) & (len(shards) - 1)][key]
        self._size -= 1

    def __iter__(self) -> Iterator[K]:
        return chain.from_iterable(self._shards)

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...
    def get(self, key: K, default: object = None, /) -> object:
        shards = self._shards
        return shards[hash(key) & (len(shards) - 1)].get(key, default)

    @overload
    def pop(self, key: K, /) -> V: ...
    @overload
    def pop(self, key: K, default: V | D, /) -> V | D: ...
    def pop(self, key: K, default: object = _ABSENT, /) -> object:
        shards = self._shards
        shard = shards[hash(key) & (len(shards) - 1)]
        if key in shard:
            self._size -= 1
            return shard.pop(key)
        if default is _ABSENT:
            raise KeyError(key)
        return default

    def clear(self) -> None:
        self._shards, self._size = [{}], 0
