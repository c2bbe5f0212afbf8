"""Stale-if-error: expired entries kept for a while, to answer when their reload fails.

A layer with ``stale_if_error`` (seconds) does not forget an entry the moment it expires: its
:class:`StaleCopies` keep it for that long after its deadline. Reads never see it (it is not in
the entry map: an expired entry is never served as fresh). Only a load of its key whose loader
fails may answer with it, marked stale (``layer.lookup`` says so; ``stats().stale_served``
counts it), so that an outage of what the loader calls degrades to yesterday's answer instead of
an error, for a bounded time (the guide's "handle stale data: graceful degradation").

A copy is dropped when its time is up, when its key is written, deleted, invalidated or
cleared (a known change: a stale copy must never outlive the value it copies), and before any
live entry when the layer needs room: its bytes count in the layer's budget while it is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.entry import NEVER, Entry

__all__ = ["StaleCopies"]


class StaleCopies:
    """Expired entries of one layer, kept ``grace`` seconds past their deadline."""

    __slots__ = ("_copies", "bytes", "grace")

    def __init__(self, grace: float) -> None:
        self.grace = grace
        # key -> the expired entry, oldest expiry first (entries expire in deadline order).
        self._copies: OrderedDict[str, Entry] = OrderedDict()
        #: Bytes the copies hold (counted in the layer's size too).
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._copies)

    def keep(self, entry: Entry) -> None:
        """``entry`` expired: keep it until ``grace`` seconds past its deadline."""
        self.drop(entry.key)
        self._copies[entry.key] = entry
        self.bytes += entry.size

    def usable(self, key: str, now: float) -> Entry | None:
        """The copy of ``key`` if its grace has not run out."""
        entry = self._copies.get(key)
        if entry is None or entry.expires_at + self.grace <= now:
            return None
        return entry

    def drop(self, key: str) -> int:
        """Forget the copy of ``key``; the bytes it held (0 if none)."""
        entry = self._copies.pop(key, None)
        if entry is None:
            return 0
        self.bytes -= entry.size
        return entry.size

    def drop_oldest(self) -> int:
        """Forget the oldest copy (to make room); the bytes it held (0 if none)."""
        if not self._copies:
            return 0
        _, entry = self._copies.popitem(last=False)
        self.bytes -= entry.size
        return entry.size

    def drop_due(self, now: float) -> int:
        """Forget the copies whose grace ran out; the bytes they held."""
        freed = 0
        copies = self._copies
        while copies:
            entry = next(iter(copies.values()))
            if entry.expires_at + self.grace > now:
                break
            freed += self.drop(entry.key)
        return freed

    def next_deadline(self) -> float:
        for entry in self._copies.values():
            return entry.expires_at + self.grace
        return NEVER

    def matching(self, selection: Selection) -> Iterator[str]:
        """The keys of the copies ``selection`` selects (a snapshot: the caller drops them)."""
        for key, entry in list(self._copies.items()):
            if selection.matches(key, entry.tags):
                yield key

    def clear(self) -> int:
        freed, self.bytes = self.bytes, 0
        self._copies.clear()
        return freed
