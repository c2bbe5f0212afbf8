"""Brute-force references of the policies: plain lists, linear scans, weights summed every time.

Each follows the rules its policy documents, written as directly as possible and with no
incremental bookkeeping (no running totals, no lazy heaps, no ordered dicts), so that a
Hypothesis test comparing the two after every step checks the policies' bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence

from rgruntime.policies.admission import (
    MIN_PERIOD,
    MIN_SKETCH_ENTRIES,
    PERIOD_PER_ENTRY,
    RETURN_BONUS,
    WINDOW_GHOST,
)
from rgruntime.policies.sketch import MAX_COUNT, FrequencySketch


class ReferenceLRU:
    """Keys in recency order, oldest first."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def record_access(self, key: str, expires_at: float, count: int = 1) -> None:
        if key in self.order:
            self.order.remove(key)
            self.order.append(key)

    def record_write(self, key: str, size: int, expires_at: float, cost: float = 1.0) -> None:
        if key in self.order:
            self.order.remove(key)
        self.order.append(key)

    def remove(self, key: str) -> None:
        if key in self.order:
            self.order.remove(key)

    def victim(self) -> str:
        if not self.order:
            raise KeyError("empty")
        return self.order[0]

    def __len__(self) -> int:
        return len(self.order)


class ReferenceTTL:
    """Each key's (deadline, placement number); the victim is the minimum, found by a scan."""

    def __init__(self) -> None:
        self.placed: dict[str, tuple[float, int]] = {}
        self.placements = 0

    def _place(self, key: str, expires_at: float) -> None:
        self.placements += 1
        self.placed[key] = (expires_at, self.placements)

    def record_access(self, key: str, expires_at: float, count: int = 1) -> None:
        if key in self.placed and self.placed[key][0] != expires_at:
            self._place(key, expires_at)

    def record_write(self, key: str, size: int, expires_at: float, cost: float = 1.0) -> None:
        self._place(key, expires_at)

    def remove(self, key: str) -> None:
        self.placed.pop(key, None)

    def victim(self) -> str:
        if not self.placed:
            raise KeyError("empty")
        return min(self.placed, key=self.placed.__getitem__)

    def __len__(self) -> int:
        return len(self.placed)


class ReferenceGDSF:
    """GreedyDual-Size-Frequency computed eagerly: every priority recomputed when it changes,
    the victim found by scanning for the least (priority, last update), sparing the entry
    written last while another entry is there."""

    def __init__(self, weighted: bool) -> None:
        self.weighted = weighted
        self.entries: dict[str, dict[str, float]] = {}
        self.clock = 0.0
        self.updates = 0
        self.named: str | None = None
        self.newest: str | None = None

    def _refresh(self, key: str) -> None:
        entry = self.entries[key]
        entry["priority"] = self.clock + entry["frequency"] * entry["cost"] / entry["weight"]
        self.updates += 1
        entry["order"] = self.updates

    def record_access(self, key: str, expires_at: float, count: int = 1) -> None:
        if key in self.entries:
            self.entries[key]["frequency"] += count
            self._refresh(key)

    def record_write(self, key: str, size: int, expires_at: float, cost: float = 1.0) -> None:
        weight = size if self.weighted and size > 1 else 1
        frequency = self.entries[key]["frequency"] + 1 if key in self.entries else 1
        self.entries[key] = {"frequency": frequency, "cost": max(cost, 1e-9), "weight": weight}
        self._refresh(key)
        self.newest = key

    def remove(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if key == self.newest:
            self.newest = None
        if entry is not None and key == self.named:
            self.named = None
            self.clock = max(self.clock, entry["priority"])

    def victim(self) -> str:
        if not self.entries:
            raise KeyError("empty")
        eligible = [k for k in self.entries if k != self.newest] or list(self.entries)
        self.named = min(
            eligible, key=lambda k: (self.entries[k]["priority"], self.entries[k]["order"])
        )
        return self.named

    def __len__(self) -> int:
        return len(self.entries)


class ReferenceAdmission:
    """The admission engine (``lfu``, ``tiered``) with a fixed window, in lists.

    Segment 0 is the window, 1..n the main segments from the coldest; each a list, oldest
    first. Uses the real :class:`FrequencySketch` for the counters (tested on its own against
    exact counts): what is checked here is the movement of keys and the weights.
    """

    def __init__(
        self,
        shares: Sequence[float],
        capacity: int,
        weighted: bool,
        window: float,
        window_hits_promote: int = 0,
    ) -> None:
        self.window_hits_promote = window_hits_promote
        total = sum(shares)
        self.shares = [share / total for share in shares]
        self.top = len(shares)
        self.capacity = capacity
        self.weighted = weighted
        self.window_share = window
        self.segments: list[list[str]] = [[] for _ in range(self.top + 1)]
        self.weight: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.slots: dict[str, tuple[int, int]] = {}
        self.sketch = FrequencySketch(max(0 if weighted else capacity, MIN_SKETCH_ENTRIES))
        self.window_ghost: list[tuple[str, int]] = []
        self.main_ghost: list[tuple[str, int]] = []
        self.departures = [0, 0]
        self.named: str | None = None
        self.admitting: str | None = None
        self.events = 0
        self.entries = max(1, 0 if weighted else capacity)

    # -- derived, recomputed every time --------------------------------------------------------

    def segment(self, key: str) -> int:
        return next(index for index, keys in enumerate(self.segments) if key in keys)

    def held(self, segment: int) -> int:
        return sum(self.weight[key] for key in self.segments[segment])

    def main_held(self) -> int:
        return sum(self.held(segment) for segment in range(1, self.top + 1))

    def limits(self) -> list[int]:
        window = min(self.capacity, max(1, round(self.capacity * self.window_share)))
        main = self.capacity - window
        limits = [window] + [0] * self.top
        for segment in range(2, self.top + 1):
            limits[segment] = int(main * self.shares[segment - 1])
        limits[1] = main - sum(limits[2:])
        return limits

    def main_limit(self) -> int:
        return sum(self.limits()[1:])

    def frequency(self, key: str) -> int:
        return min(MAX_COUNT, self.sketch.estimate(self.slots[key]) + self.pending[key])

    # -- moves ------------------------------------------------------------------------------------

    def move(self, key: str, segment: int) -> None:
        self.segments[self.segment(key)].remove(key)
        self.segments[segment].append(key)

    def demote_from(self, segment: int) -> None:
        for upper in range(segment, 1, -1):
            while self.held(upper) > self.limits()[upper] and self.segments[upper]:
                self.move(self.segments[upper][0], upper - 1)

    def settle(self) -> None:
        while self.segments[0] and self.held(0) > self.limits()[0]:
            oldest = self.segments[0][0]
            if self.main_held() + self.weight[oldest] > self.main_limit():
                return
            self.move(oldest, 1)
            self.departures[0] += 1  # every exit from the window counts (the ghost's clock)

    def tick(self, count: int) -> None:
        self.events += count
        if self.events >= max(MIN_PERIOD, PERIOD_PER_ENTRY * self.entries):
            self.events = 0
            for key, pending in self.pending.items():
                if pending:
                    self.sketch.add(self.slots[key], pending)
                    self.pending[key] = 0
            self.sketch.halve()
            if self.weighted:  # the period follows the resident entries
                self.entries = max(1, len(self.weight))

    # -- the interface -----------------------------------------------------------------------------

    def record_access(self, key: str, expires_at: float, count: int = 1) -> None:
        if key not in self.weight:
            return
        self.pending[key] += count
        segment = self.segment(key)
        if (  # tiered: a key used often in the window moves on into the coldest tier
            segment == 0
            and self.window_hits_promote
            and self.pending[key] > self.window_hits_promote
            and self.main_limit()
        ):
            self.move(key, 1)
            self.departures[0] += 1
        elif segment in (0, self.top):
            self.move(key, segment)
        else:  # one segment hotter per hit reported
            for _ in range(count):
                segment = self.segment(key)
                if segment in (0, self.top):
                    break
                self.move(key, segment + 1)
                self.demote_from(segment + 1)
        self.tick(count)

    def record_write(self, key: str, size: int, expires_at: float, cost: float = 1.0) -> None:
        weight = size if self.weighted and size > 1 else 1
        if key in self.weight:
            self.weight[key] = weight
            self.pending[key] += 1
            self.move(key, self.segment(key))
        else:
            pending = 1
            left = dict(self.window_ghost)
            if key in left:
                # Remembered while among the window's last `limit` departures.
                limit = max(1, int(WINDOW_GHOST * self.entries))
                if self.departures[0] - left[key] < limit:
                    pending += RETURN_BONUS
                self.window_ghost = [(k, d) for k, d in self.window_ghost if k != key]
            elif key in dict(self.main_ghost):
                self.main_ghost = [(k, d) for k, d in self.main_ghost if k != key]
            self.weight[key] = weight
            self.pending[key] = pending
            self.slots[key] = self.sketch.slots(key)
            self.segments[0].append(key)
            if self.held(0) > self.limits()[0]:
                self.settle()
        self.tick(1)

    def remove(self, key: str) -> None:
        if key not in self.weight:
            return
        segment = self.segment(key)
        self.segments[segment].remove(key)
        if key == self.named:
            self.named = None
            side = 0 if segment == 0 else 1
            self.departures[side] += 1
            ghost = self.main_ghost if side else self.window_ghost
            ghost.append((key, self.departures[side]))  # never trimmed: see record_write
            if self.admitting is not None:
                admitting, self.admitting = self.admitting, None
                if admitting in self.segments[0]:
                    self.move(admitting, 1)
                    self.departures[0] += 1
        pending = self.pending.pop(key)
        if pending:
            self.sketch.add(self.slots[key], pending)
        del self.weight[key], self.slots[key]

    def victim(self) -> str:
        if not self.weight:
            raise KeyError("empty")
        self.admitting = None
        if self.held(0) > self.limits()[0]:
            self.settle()
            window = self.segments[0]
            if window and self.held(0) > self.limits()[0]:
                candidate = window[0]
                incumbent = next((keys[0] for keys in self.segments[1:] if keys), None)
                if (
                    incumbent is not None
                    and self.frequency(candidate) - 1 > self.frequency(incumbent)
                    and self.weight[candidate] <= self.main_limit()
                ):
                    self.admitting = candidate
                    self.named = incumbent
                    return incumbent
                self.named = candidate
                return candidate
        main = [keys[0] for keys in self.segments[1:] if keys]
        self.named = main[0] if main else self.segments[0][0]
        return self.named

    def __len__(self) -> int:
        return len(self.weight)
