"""Miss-ratio curves from sampled reuse distances, in bounded memory (fixed-size SHARDS).

An LRU cache of ``c`` entries hits a request exactly when fewer than ``c`` other keys were asked
for since the key's previous request (its *reuse distance*), so the histogram of reuse distances
is the LRU miss-ratio curve at every size at once. Measuring every distance costs memory in
proportion to the keys, so this module follows SHARDS (Waldspurger et al., "Efficient MRC
Construction with SHARDS", FAST 2015), fixed-size variant, written from the paper:

- a key is *sampled* when its 64-bit hash is below a threshold ``T``; the sampling rate is
  ``R = T / 2**64``. Distances are measured among sampled keys only and scaled by ``1/R``; each
  sampled request stands for ``1/R`` requests;
- at most :data:`MAX_SAMPLED_KEYS` keys are tracked. When one more would be needed, the key with
  the largest hash is dropped and ``T`` lowered to its hash: the rate falls as the footprint
  grows, memory does not;
- every request is counted (one integer addition), so the sampled weight's shortfall from the
  true count is known and put at distance 0 (the paper's SHARDS-adj correction).

The histogram is a :class:`~rgruntime.observe.histogram.LogHistogram` (fixed bins), the tracked
keys a dict and two sorted lists: memory is bounded by :data:`MAX_SAMPLED_KEYS` whatever the
traffic. Pure and synchronous: fed by a layer's access observer at its maintenance passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs
from sortedcontainers import SortedList
from xxhash import xxh3_64_intdigest

from rgruntime.observe.histogram import LogHistogram

__all__ = ["MAX_SAMPLED_KEYS", "MissRatioCurve", "ReuseSampler"]

#: The most keys a sampler tracks. Each costs about 300 bytes (a dict slot, two sorted-list
#: items, a small list), so a sampler holds at most about 20 MB, plus its histograms' fixed bins,
#: and only once it has seen that many distinct keys. Chosen on the six shared traces, whole: the
#: curve of scarab_recs (258,368 keys; its hottest 1% make 39% of the requests) is off by 1.5
#: points on average with 8,192 keys, 1.10 with 32,768 (0.52 on its first 400,000 requests),
#: 0.52 with 65,536 (``python -m benchmarks analysis``): whether its few hot keys fall in the
#: sample is luck, and more samples make it less so.
MAX_SAMPLED_KEYS: Final = 65536

_HASH_SPACE: Final = 1 << 64


@attrs.frozen
class MissRatioCurve:
    """LRU miss ratios (0-1) at cache sizes in entries, increasing sizes."""

    sizes: tuple[int, ...]
    miss_ratios: tuple[float, ...]
    #: Requests the curve is built from, and the sampling rate it ended at.
    requests: int
    sampling_rate: float

    def miss_ratio(self, size: float) -> float:
        """The miss ratio at ``size`` entries (linear between the curve's points)."""
        sizes, ratios = self.sizes, self.miss_ratios
        if not sizes:
            return 1.0
        if size <= sizes[0]:
            return ratios[0]
        for index in range(1, len(sizes)):
            if size <= sizes[index]:
                low, high = sizes[index - 1], sizes[index]
                share = (size - low) / (high - low)
                return ratios[index - 1] + share * (ratios[index] - ratios[index - 1])
        return ratios[-1]

    def as_dict(self) -> dict[str, object]:
        return {
            "sizes": list(self.sizes),
            "miss_ratios": list(self.miss_ratios),
            "requests": self.requests,
            "sampling_rate": self.sampling_rate,
        }


class _Tracked:
    """A tracked key's last request: its stamp (a request counter) and time."""

    __slots__ = ("stamp", "time")

    def __init__(self, stamp: int, time: float) -> None:
        self.stamp = stamp
        self.time = time


class ReuseSampler:
    """Sampled reuse distances and re-request times of one stream of requests.

    ``access(key)`` is a request (a hit or a miss); ``touch(key)`` a write, which makes the key
    the most recent without being a request. ``clock`` times re-requests (seconds).
    """

    def __init__(
        self,
        max_keys: int = MAX_SAMPLED_KEYS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self._max_keys = max_keys
        self._clock = clock
        self._threshold = _HASH_SPACE  # sample a key when its hash is below this
        self._stamp = 0
        self._tracked: dict[str, _Tracked] = {}
        self._stamps: SortedList[int] = SortedList()  # the tracked keys' last stamps
        self._hashes: SortedList[tuple[int, str]] = SortedList()  # (hash, key) of the tracked keys
        self.distances = LogHistogram()
        #: Seconds between two requests of a key (sampled keys, weighted as requests).
        self.rerequest_times = LogHistogram()
        self.cold = 0.0  # weight of first requests of sampled keys
        self.requests = 0  # every request, sampled or not

    @property
    def sampling_rate(self) -> float:
        return self._threshold / _HASH_SPACE

    @property
    def tracked_keys(self) -> int:
        return len(self._tracked)

    def access(self, key: str, count: int = 1) -> None:
        """``count`` requests of ``key`` in a row (the later ones at distance 0)."""
        self.requests += count
        hashed = xxh3_64_intdigest(key.encode())
        if hashed >= self._threshold:
            return
        weight = _HASH_SPACE / self._threshold
        now = self._clock() if self._clock is not None else 0.0
        record = self._tracked.get(key)
        if record is None:
            self.cold += weight
            self._track(key, hashed, now)
            if key not in self._tracked:
                return  # it was the one dropped to stay within max_keys
            record = self._tracked[key]
        else:
            stamp = record.stamp
            # Keys requested since: tracked keys whose last stamp is later than this one's.
            behind = len(self._stamps) - self._stamps.bisect_right(stamp)
            self.distances.add(behind * weight, weight)
            if self._clock is not None:
                self.rerequest_times.add(now - record.time, weight)
            self._restamp(record)
            record.time = now
        if count > 1:
            self.distances.add(0.0, (count - 1) * weight)
            if self._clock is not None:
                self.rerequest_times.add(0.0, (count - 1) * weight)

    def touch(self, key: str) -> None:
        """A write of ``key``: the most recent key now, not a request."""
        record = self._tracked.get(key)
        if record is not None:
            self._restamp(record)
            record.time = self._clock() if self._clock is not None else 0.0

    def curve(self, sizes: Iterable[int]) -> MissRatioCurve:
        """The LRU miss-ratio curve at ``sizes`` (entries)."""
        points = sorted({int(size) for size in sizes if size >= 1})
        if not self.requests:
            return MissRatioCurve(tuple(points), tuple(1.0 for _ in points), 0, self.sampling_rate)
        # SHARDS-adj: the sampled weight's shortfall from the true count, at distance 0.
        total = float(self.requests)
        ratios = []
        for size in points:
            misses = self.cold + self.distances.total - self.distances.weight_below(size)
            ratios.append(min(1.0, max(0.0, misses / total)))
        return MissRatioCurve(tuple(points), tuple(ratios), self.requests, self.sampling_rate)

    def footprint(self) -> float:
        """The estimated number of distinct keys requested (sampled ones scaled by 1/R)."""
        return self.cold

    # -- internals ----------------------------------------------------------------------------

    def _restamp(self, record: _Tracked) -> None:
        self._stamps.remove(record.stamp)
        self._stamp += 1
        record.stamp = self._stamp
        self._stamps.add(self._stamp)

    def _track(self, key: str, hashed: int, now: float) -> None:
        self._stamp += 1
        self._tracked[key] = _Tracked(self._stamp, now)
        self._stamps.add(self._stamp)
        self._hashes.add((hashed, key))
        while len(self._tracked) > self._max_keys:
            # Lower the threshold to the largest tracked hash and drop every key at or above.
            top_hash = self._hashes[-1][0]
            self._threshold = top_hash
            while self._hashes and self._hashes[-1][0] >= top_hash:
                _, dropped = self._hashes.pop()
                self._stamps.remove(self._tracked.pop(dropped).stamp)


def sizes_between(low: int, high: int, count: int) -> Sequence[int]:
    """``count`` cache sizes spread geometrically from ``low`` to ``high`` (distinct ints)."""
    low, high = max(1, low), max(1, high)
    if count <= 1 or high <= low:
        return [low]
    ratio = (high / low) ** (1 / (count - 1))
    return sorted({max(1, round(low * ratio**step)) for step in range(count)})
