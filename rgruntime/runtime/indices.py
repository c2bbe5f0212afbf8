"""The indices a layer's actor keeps beside its entries: deadlines, tags and sorted keys.

They belong to the actor alone (no locking); readers never touch them.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Iterable, Iterator

from sortedcontainers import SortedList

from rgruntime.runtime.entry import NEVER, Entry

__all__ = ["TAG_SEPARATOR", "KeyIndex", "TagIndex", "TimerIndex", "literal_prefix"]

#: Separates the levels of a hierarchical tag: ``products:electronics:phones``.
TAG_SEPARATOR = ":"
# The character right after the separator: [tag + ":", tag + ";") spans exactly the children.
_AFTER_SEPARATOR = chr(ord(TAG_SEPARATOR) + 1)
_GLOB_SPECIALS = re.compile(r"[*?\[]")
#: Keys read from the key index at a time by a lazy glob match.
KEY_CHUNK = 256


class TimerIndex:
    """Entries with a deadline, in deadline order (ties broken by creation order)."""

    __slots__ = ("_timers",)

    def __init__(self) -> None:
        # (deadline, sequence, key): the key, not the entry, so that an entry and its timer do
        # not form a reference cycle (cycles leave every write to the garbage collector).
        self._timers: SortedList[tuple[float, int, str]] = SortedList()

    def add(self, entry: Entry) -> None:
        if entry.expires_at != NEVER:
            entry.timer = (entry.expires_at, entry.sequence, entry.key)
            self._timers.add(entry.timer)

    def discard(self, entry: Entry) -> None:
        if entry.timer is not None:
            self._timers.remove(entry.timer)
            entry.timer = None

    def next_deadline(self) -> float:
        """The earliest deadline, or ``NEVER`` when nothing is timed."""
        return self._timers[0][0] if self._timers else NEVER

    def iter_due(self, now: float) -> Iterator[str]:
        """The keys whose timers are at or before ``now``, earliest first, one at a time.

        The caller must :meth:`discard` each entry's timer before asking for the next key (else
        the same key comes again). A sliding TTL may have moved an entry's deadline since its
        timer was set: the caller checks ``entry.expires_at`` and re-adds the live ones.
        """
        timers = self._timers
        while timers and timers[0][0] <= now:
            yield timers[0][2]

    def __len__(self) -> int:
        return len(self._timers)


class TagIndex:
    """Tag to keys, with hierarchical lookup: ``products`` finds ``products:electronics:phones``."""

    __slots__ = ("_keys_by_tag", "_tags")

    def __init__(self) -> None:
        self._keys_by_tag: dict[str, set[str]] = {}
        self._tags: SortedList[str] = SortedList()

    def add(self, key: str, tags: Iterable[str]) -> None:
        for tag in tags:
            keys = self._keys_by_tag.get(tag)
            if keys is None:
                keys = self._keys_by_tag[tag] = set()
                self._tags.add(tag)
            keys.add(key)

    def discard(self, key: str, tags: Iterable[str]) -> None:
        for tag in tags:
            keys = self._keys_by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_tag[tag]
                    self._tags.remove(tag)

    def keys_under(self, tag: str) -> set[str]:
        """Keys tagged ``tag`` or any tag below it (``tag:...``), but not ``tagX``."""
        return set(self.iter_keys_under(tag))

    def iter_keys_under(self, tag: str) -> Iterator[str]:
        """:meth:`keys_under`, lazily, one tag's keys at a time (each copied when reached), so
        the caller may remove keys between two of them. A key under two tags comes twice."""
        for name in [
            tag,
            *self._tags.irange(
                tag + TAG_SEPARATOR, tag + _AFTER_SEPARATOR, inclusive=(True, False)
            ),
        ]:
            keys = self._keys_by_tag.get(name)
            if keys:
                yield from list(keys)

    def __len__(self) -> int:
        return len(self._keys_by_tag)


def literal_prefix(pattern: str) -> str:
    """The part of a glob pattern before its first wildcard: ``weather_*`` gives ``weather_``."""
    special = _GLOB_SPECIALS.search(pattern)
    return pattern if special is None else pattern[: special.start()]


class KeyIndex:
    """The layer's keys in sorted order, so a glob with a literal prefix visits only that range."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: SortedList[str] = SortedList()

    def add(self, key: str) -> None:
        self._keys.add(key)

    def discard(self, key: str) -> None:
        self._keys.discard(key)

    def matching(self, pattern: str) -> list[str]:
        """Keys matching the glob ``pattern`` (``*``, ``?``, ``[...]``; case-sensitive)."""
        return list(self.iter_matching(pattern))

    def iter_matching(self, pattern: str) -> Iterator[str]:
        """:meth:`matching`, lazily: keys are read from the pattern's literal prefix range a
        chunk at a time, from where the last chunk ended, so the caller may remove keys between
        two of them and stop the loop's thread for no longer than it wants."""
        prefix = literal_prefix(pattern)
        if prefix == pattern:
            if pattern in self._keys:
                yield pattern
            return
        match = re.compile(fnmatch.translate(pattern)).match
        for key in self.iter_from(prefix):
            if not key.startswith(prefix):
                return
            if match(key):
                yield key

    def iter_from(self, start: str = "") -> Iterator[str]:
        """The keys from ``start`` on, in order, read a chunk at a time (see
        :meth:`iter_matching`): keys removed meanwhile are not missed, keys added meanwhile
        after the cursor are seen."""
        after: str | None = None
        while True:
            if after is None:
                chunk = list(itertools.islice(self._keys.irange(minimum=start), KEY_CHUNK))
            else:
                keys = self._keys.irange(minimum=after, inclusive=(False, True))
                chunk = list(itertools.islice(keys, KEY_CHUNK))
            if not chunk:
                return
            yield from chunk
            after = chunk[-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
