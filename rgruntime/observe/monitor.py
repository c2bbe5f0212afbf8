"""What one layer's accesses and removals say about it: the analysis's and diagnosis's source.

A :class:`LayerMonitor` is an access observer (``layer.add_access_observer``) and a removal
listener (``layer.add_removal_listener``) of one layer. It is told of hits, misses and writes at
the layer's maintenance passes, in order, and of removals as they happen, so the layer's hit path
pays nothing for it (hits are logged for the policy anyway; misses are logged while it listens).
Pure and synchronous.

It keeps:

- a :class:`~rgruntime.observe.shards.ReuseSampler` (reuse distances, re-request times): bounded
  by :data:`~rgruntime.observe.shards.MAX_SAMPLED_KEYS`;
- per live entry: when it was written (as the pass heard it), its deadline, its size, its hits
  since (for ``find_stale``, ``memory_usage`` and ``low_value_count``): one small record per
  entry the layer holds;
- *ghosts*: keys that expired or were evicted recently (as many as the layer's entries, at least
  :data:`MIN_GHOSTS`), so that a miss on one can be told apart;
- the causes of the last :data:`MAX_RECENT_MISSES` misses.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final, Literal, TypeAlias, TypeVar

from rgruntime.observe.histogram import LogHistogram
from rgruntime.observe.shards import MAX_SAMPLED_KEYS, ReuseSampler

__all__ = ["MAX_RECENT_MISSES", "MIN_GHOSTS", "EntryRecord", "LayerMonitor", "MissCause"]

#: The fewest recently expired (and recently evicted) keys remembered.
MIN_GHOSTS: Final = 4096
#: Misses whose cause is remembered (for per-agent diagnosis and shares).
MAX_RECENT_MISSES: Final = 10_000

V = TypeVar("V")

#: Why a lookup missed, as far as the monitor can tell:
#: ``expired`` (the key had expired within its own TTL before the request), ``evicted`` (evicted
#: recently), ``cold`` (the monitor never saw it, or it was invalidated or deleted).
MissCause: TypeAlias = Literal["expired", "evicted", "cold"]


class EntryRecord:
    """What the monitor knows of a live entry."""

    __slots__ = ("deadline", "hits", "size", "written_at")

    def __init__(self, written_at: float, deadline: float, size: int) -> None:
        self.written_at = written_at
        self.deadline = deadline
        self.size = size
        self.hits = 0


class LayerMonitor:
    """The access observer and removal listener of one layer (see the module documentation).

    ``now``: the layer's clock. ``remaining(key)``: seconds the live entry under ``key`` has left
    (None: no deadline; raises KeyError when there is none), i.e. ``layer.ttl``.
    """

    def __init__(
        self,
        name: str,
        now: Callable[[], float],
        remaining: Callable[[str], float | None],
        *,
        max_sampled_keys: int = MAX_SAMPLED_KEYS,
        on_miss: Callable[[str], None] | None = None,
        on_activity: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._on_miss = on_miss
        # Told at most once a second (of the layer's clock) that the layer is busy: the metric
        # series closes its buckets on time without a task waking every second.
        self._on_activity = on_activity
        self._next_activity = -math.inf
        self._now = now
        self._remaining = remaining
        self.sampler = ReuseSampler(max_sampled_keys, clock=now)
        self.entries: dict[str, EntryRecord] = {}
        # key -> (deadline it had, TTL it had) / key -> when it was evicted
        self._expired: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._evicted: OrderedDict[str, float] = OrderedDict()
        #: For misses on keys that had expired: seconds from their write to the request (the
        #: TTL they would have needed).
        self.needed_ttls = LogHistogram()
        self.recent_misses: deque[tuple[str, MissCause]] = deque(maxlen=MAX_RECENT_MISSES)
        self.misses = 0
        self.writes = 0
        self.written_bytes = 0

    # -- the access observer -----------------------------------------------------------------

    def hit(self, key: str, count: int) -> None:
        self.sampler.access(key, count)
        record = self.entries.get(key)
        if record is not None:
            record.hits += count

    def miss(self, key: str) -> None:
        self.sampler.access(key)
        self.misses += 1
        self.recent_misses.append((key, self._cause(key)))
        if self._on_miss is not None:
            self._on_miss(key)
        self._active(self._now())

    def write(self, key: str, size: int) -> None:
        self.sampler.touch(key)
        now = self._now()
        try:
            left = self._remaining(key)
        except KeyError:
            return  # gone already (replaced, removed): the later record says what stays
        deadline = math.inf if left is None else now + left
        self.entries[key] = EntryRecord(now, deadline, size)
        self.writes += 1
        self.written_bytes += size
        self._active(now)

    # -- the removal listener ----------------------------------------------------------------

    def __call__(self, layer: str, key: str, reason: str) -> None:
        if reason == "replaced":
            return  # the write's record replaces it when the pass replays the write
        record = self.entries.pop(key, None)
        if reason == "expired" and record is not None:
            self._remember(
                self._expired, key, (record.deadline, record.deadline - record.written_at)
            )
        elif reason in ("evicted", "trimmed"):
            self._remember(self._evicted, key, self._now())

    # -- what the analysis reads ------------------------------------------------------------

    @property
    def mean_entry_size(self) -> float:
        """Mean bytes of the entries written (0 before any write)."""
        return self.written_bytes / self.writes if self.writes else 0.0

    def miss_causes(self, prefix: str | None = None) -> dict[MissCause, int]:
        """Causes of the recent misses (on keys starting with ``prefix``, if given)."""
        counts: dict[MissCause, int] = {"expired": 0, "evicted": 0, "cold": 0}
        for key, cause in self.recent_misses:
            if prefix is None or key.startswith(prefix):
                counts[cause] += 1
        return counts

    # -- internals ------------------------------------------------------------------------------

    def _active(self, now: float) -> None:
        if now >= self._next_activity and self._on_activity is not None:
            self._next_activity = now + 1.0
            self._on_activity()

    def _cause(self, key: str) -> MissCause:
        now = self._now()
        record = self.entries.get(key)
        if record is not None and record.deadline <= now:
            # Past its deadline and not removed yet (or replaced by the load this miss started).
            return self._expired_miss(now, record.deadline, record.deadline - record.written_at)
        ghost = self._expired.pop(key, None)
        if ghost is not None:
            return self._expired_miss(now, *ghost)
        if self._evicted.pop(key, None) is not None:
            return "evicted"
        return "cold"

    def _expired_miss(self, now: float, deadline: float, ttl: float) -> MissCause:
        # Asked again within one more TTL of expiring: a longer TTL would have served it.
        self.needed_ttls.add(max(0.0, now - deadline + ttl))
        return "expired" if now - deadline <= max(ttl, 1e-9) else "cold"

    def _remember(self, ghosts: OrderedDict[str, V], key: str, value: V) -> None:
        ghosts.pop(key, None)
        ghosts[key] = value
        limit = max(MIN_GHOSTS, len(self.entries))
        while len(ghosts) > limit:
            ghosts.popitem(last=False)
