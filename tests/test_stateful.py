"""Stateful property tests: a layer driven by Hypothesis against a plain Python model.

Each test opens an event loop in a thread (an anyio blocking portal) on a virtual clock, and each
Hypothesis example opens a fresh runtime in it and drives one layer with random sequences of
writes (with TTLs, tags and sizes), reads, loads, deletes, invalidations by key, tag and pattern,
clears, cleanups and jumps of the clock.

The clocks are manual (see ``tests/support.py``): an autojump clock would race ahead to the next
TTL deadline whenever the portal waits for the test's next call, so here time moves only when a
rule jumps it, by binary fractions, and the model knows to the tick when each entry expires.
Each rule is one portal call that reads the clock, runs the operation and snapshots the layer,
all in the event loop's thread; the rule then applies the operation to the model and compares.

A failure prints the steps that reproduce it, as calls on the machine.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

import rgruntime
from rgruntime import MISSING, CacheStats, Layer, LayerStatistics, Runtime
from rgruntime.sizing import weigh
from tests.support import BACKENDS, jump_clock, manual_time_backend

# At least 200 examples of up to 30 steps for each backend and machine, on every run.
SETTINGS = settings(max_examples=200, stateful_step_count=30, deadline=None)

ALL_KEYS = ("a", "b", "ab", "weather_x", "weather_y", "news_1", "c:1")
KEYS = st.sampled_from(ALL_KEYS)
VALUES = st.integers(0, 1000)
TAGS = st.lists(st.sampled_from(["p", "p:e", "p:e:ph", "pX", "p-x", "q"]), max_size=3)
TAG = st.sampled_from(["p", "p:e", "p:e:ph", "pX", "q", "p:e:ph:z"])
PATTERNS = st.sampled_from(["weather_*", "*_1", "a?", "[ab]", "*", "news_?", "c:*", "ab", "x*"])
# None: the layer's default TTL. Every TTL and every clock step is a binary fraction, so
# deadlines are exact and an entry read exactly at its deadline must already be gone.
DEFAULT_TTL = 4.0
TTLS = st.sampled_from([None, 0.5, 1, 2.5, "3s", 10, "1m"])
STEPS = st.sampled_from([0.25, 0.5, 1, 1.5, 2.5, 4, 10])
SIZES = st.integers(0, 50)

#: What a write asks for: key, value, ttl, tags, size.
Write = tuple[str, int, Any, list[str], int]


@attrs.define
class ModelEntry:
    value: int
    expires_at: float
    ttl: float
    tags: frozenset[str]
    size: int


@attrs.frozen
class Snapshot:
    """What the layer shows right after an operation (taken in the same portal call)."""

    present: frozenset[str]
    stats: CacheStats
    statistics: LayerStatistics


# -- what runs in the event loop's thread --------------------------------------------------------


async def observe(layer: Layer, operation: Callable[..., Any], *args: Any) -> tuple:
    """Read the clock, run ``operation``, snapshot the layer: ``(now, result, snapshot)``."""
    now = anyio.current_time()
    result = operation(*args)
    if inspect.isawaitable(result):
        result = await result
    present = frozenset(key for key in ALL_KEYS if key in layer)  # `in` counts no hit
    return now, result, Snapshot(present, layer.stats(), layer.statistics())


def write_nowait(
    layer: Layer, key: str, value: int, ttl: Any, tags: list[str], size: int
) -> object:
    layer.set_nowait(key, value, ttl=ttl, tags=tags, size=size)
    return layer.get_nowait(key, MISSING)  # read your writes: nothing ran in between


async def write(layer: Layer, key: str, value: int, ttl: Any, tags: list[str], size: int) -> object:
    await layer.set(key, value, ttl=ttl, tags=tags, size=size)
    return layer.get_nowait(key, MISSING)


async def load(layer: Layer, key: str, value: int, ttl: Any, tags: list[str], size: int) -> tuple:
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        return value

    return await layer.get_or_load(key, loader, ttl=ttl, tags=tags, size=size), calls


async def advance(seconds: float) -> None:
    jump_clock(seconds)
    # Timers that fell due may fire at this checkpoint (reads check deadlines anyway).
    await anyio.lowlevel.checkpoint()


def jump_then_read(layer: Layer, seconds: float, key: str) -> object:
    # No checkpoint between the jump and the read: the actor cannot have removed an entry that
    # expired in the jump, so only the read's own deadline check can keep it from being served.
    jump_clock(seconds)
    return layer.get_nowait(key, MISSING)


def ttl_seconds(ttl: float | str | None) -> float:
    return DEFAULT_TTL if ttl is None else rgruntime.parse_duration(ttl)


def tag_selects(wanted: str, tags: Iterable[str]) -> bool:
    return any(tag == wanted or tag.startswith(wanted + ":") for tag in tags)


class LayerMachine(RuleBasedStateMachine):
    """An unbounded layer behaves exactly like the model: every read, count and return value."""

    bounds: dict[str, int] = {}  # noqa: RUF012

    def __init__(self, portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__()
        self.portal = portal
        self.runtime_context: Any = None
        self.model: dict[str, ModelEntry] = {}
        self.hits = self.misses = self.loads = 0

    @initialize(sliding=st.booleans(), strategy=st.sampled_from(rgruntime.STRATEGIES))
    def open_runtime(self, sliding: bool, strategy: str) -> None:
        self.sliding = sliding
        settings = {"ttl": DEFAULT_TTL, "sliding_ttl": sliding, "strategy": strategy}
        config = {"layers": {"machine": {**settings, **self.bounds}}}
        self.runtime_context = self.portal.wrap_async_context_manager(
            rgruntime.open_runtime(config)
        )
        self.runtime: Runtime = self.runtime_context.__enter__()
        self.layer = self.runtime.layer("machine")
        # The model reads anyio's clock; the layer reads the clock it resolved when the runtime
        # opened (trio's MockClock, the asyncio loop's time()): they must agree.
        assert self.portal.call(self.layer.clock.now) == self.portal.call(anyio.current_time)

    def teardown(self) -> None:
        if self.runtime_context is not None:
            self.runtime_context.__exit__(None, None, None)

    def run(self, operation: Callable[..., Any], *args: Any) -> tuple[float, Any, Snapshot]:
        return self.portal.call(observe, self.layer, operation, *args)

    # -- the model -------------------------------------------------------------------------------

    def live(self, key: str, now: float) -> ModelEntry | None:
        entry = self.model.get(key)
        return entry if entry is not None and now < entry.expires_at else None

    def live_keys(self, now: float) -> set[str]:
        return {key for key in self.model if self.live(key, now)}

    def hit(self, entry: ModelEntry, now: float) -> None:
        self.hits += 1
        if self.sliding:
            entry.expires_at = now + entry.ttl

    def store(self, key: str, value: int, ttl: Any, tags: list[str], size: int, now: float) -> None:
        seconds = ttl_seconds(ttl)
        # The layer weighs an entry at least its key plus its measured per-entry overhead.
        weight = weigh(key, value, size)
        self.model[key] = ModelEntry(value, now + seconds, seconds, frozenset(tags), weight)

    def check_read(self, key: str, now: float, value: object) -> None:
        entry = self.live(key, now)
        if entry is None:
            assert value is MISSING, f"{key!r} should miss at t={now}, got {value!r}"
            self.misses += 1
        else:
            assert value == entry.value, f"{key!r} at t={now}: {value!r} != {entry.value!r}"
            self.hit(entry, now)

    def selected(self, keys: Iterable[str], pattern: str | None, tags: list[str]) -> set[str]:
        keys = set(keys)
        return {
            key
            for key, entry in self.model.items()
            if key in keys
            or (pattern is not None and fnmatch.fnmatchcase(key, pattern))
            or any(tag_selects(tag, entry.tags) for tag in tags)
        }

    def check(self, now: float, snapshot: Snapshot) -> None:
        """After every rule: membership, counters and loads agree with the model."""
        assert snapshot.present == self.live_keys(now)
        stats = snapshot.stats
        assert (stats.hits, stats.misses) == (self.hits, self.misses)
        assert (stats.load_successes, stats.load_failures) == (self.loads, 0)
        assert (snapshot.statistics.loads_in_flight, snapshot.statistics.load_waiters) == (0, 0)

    def check_removed(self, removed: int, selected: set[str], now: float) -> None:
        assert removed == len(selected & self.live_keys(now))

    # -- rules -----------------------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl=TTLS, tags=TAGS, size=SIZES, nowait=st.booleans())
    def set(self, key: str, value: int, ttl: Any, tags: list[str], size: int, nowait: bool) -> None:
        operation = write_nowait if nowait else write
        now, read_back, snapshot = self.run(operation, self.layer, key, value, ttl, tags, size)
        self.check_write((key, value, ttl, tags, size), now, read_back)
        self.check(now, snapshot)

    def check_write(self, write: Write, now: float, read_back: object) -> None:
        key, value, ttl, tags, size = write
        self.store(key, value, ttl, tags, size, now)
        assert read_back == value
        self.check_read(key, now, read_back)

    @rule(key=KEYS, nowait=st.booleans())
    def get(self, key: str, nowait: bool) -> None:
        operation = self.layer.get_nowait if nowait else self.layer.get
        now, value, snapshot = self.run(operation, key, MISSING)
        self.check_read(key, now, value)
        self.check(now, snapshot)

    @rule(key=KEYS, value=VALUES, ttl=TTLS, tags=TAGS, size=SIZES)
    def get_or_load(self, key: str, value: int, ttl: Any, tags: list[str], size: int) -> None:
        now, (result, calls), snapshot = self.run(load, self.layer, key, value, ttl, tags, size)
        self.check_load((key, value, ttl, tags, size), now, result, calls)
        self.check(now, snapshot)

    def check_load(self, write: Write, now: float, result: object, calls: int) -> None:
        key, value, ttl, tags, size = write
        entry = self.live(key, now)
        if entry is not None:
            assert (result, calls) == (entry.value, 0)
            self.hit(entry, now)
        else:
            assert (result, calls) == (value, 1)
            self.misses += 1
            self.loads += 1
            self.store(key, value, ttl, tags, size, now)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        now, deleted, snapshot = self.run(self.layer.delete, key)
        self.check_delete(deleted, self.live(key, now) is not None)
        self.model.pop(key, None)
        self.check(now, snapshot)

    def check_delete(self, deleted: bool, was_live: bool) -> None:
        assert deleted == was_live

    @rule(
        keys=st.lists(KEYS, max_size=2),
        pattern=st.none() | PATTERNS,
        tags=st.lists(TAG, max_size=2),
        runtime_wide=st.booleans(),
    )
    def invalidate(
        self, keys: list[str], pattern: str | None, tags: list[str], runtime_wide: bool
    ) -> None:
        if not keys and pattern is None and not tags:
            keys = ["a"]  # at least one criterion is required (tested in test_bad_input)
        target = self.runtime if runtime_wide else self.layer
        invalidation = functools.partial(target.invalidate, keys=keys, pattern=pattern, tags=tags)
        now, removed, snapshot = self.run(invalidation)
        selected = self.selected(keys, pattern, tags)
        self.check_removed(removed, selected, now)
        for key in selected:
            del self.model[key]
        self.check(now, snapshot)

    @rule()
    def clear(self) -> None:
        now, removed, snapshot = self.run(self.layer.clear)
        self.check_removed(removed, set(self.model), now)
        self.model.clear()
        self.check(now, snapshot)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        now, _, snapshot = self.run(advance, seconds)
        self.check(now + seconds, snapshot)

    @rule(seconds=STEPS, key=KEYS)
    def read_right_after_a_jump(self, seconds: float, key: str) -> None:
        now, value, snapshot = self.run(jump_then_read, self.layer, seconds, key)
        self.check_read(key, now + seconds, value)
        self.check(now + seconds, snapshot)

    @rule(choice=st.integers(0, len(ALL_KEYS) - 1), early=st.sampled_from([0.0, 0.25]))
    def read_at_a_deadline(self, choice: int, early: float) -> None:
        # Random steps rarely land exactly on a deadline: this rule jumps there (or just short
        # of it) on purpose, where an off-by-one in the deadline check would show.
        #
        # What this rule draws must not depend on the model: it used to draw the key with
        # data().draw(sampled_from(sorted(self.model))) under a precondition on the model. The
        # bounded machine's model forgets what the layer evicted, and whether the actor's
        # eviction ran before a snapshot depends on scheduling: trio runs ready tasks in a random
        # order. So the same draws left different models (on trio, from about step 1,100 of 200
        # derandomized examples, in each of 4 pairs of runs), hence draws of another shape for the
        # same prefix, and Hypothesis raised FlakyStrategyDefinition (3 runs of 4 at 1,000
        # examples; 0 of 4 since). The draw is now a fixed-range index, mapped onto the model's
        # keys when the rule runs.
        keys = sorted(self.model)
        if not keys:
            self.read_right_after_a_jump(0.0, ALL_KEYS[choice])
            return
        key = keys[choice % len(keys)]
        now = self.portal.call(anyio.current_time)
        seconds = max(0.0, self.model[key].expires_at - now - early)
        self.read_right_after_a_jump(seconds, key)

    @rule()
    def cleanup(self) -> None:
        now, _, snapshot = self.run(self.layer.cleanup)
        self.check(now, snapshot)
        stats, statistics = snapshot.stats, snapshot.statistics
        # After a maintenance pass, expired entries are gone and every index agrees with the map.
        assert stats.entries == len(snapshot.present)
        assert stats.size_bytes == sum(self.model[key].size for key in snapshot.present)
        assert statistics.timers == statistics.policy_entries == len(snapshot.present)
        assert statistics.pending_writes == 0
        self.check_bounds(stats)

    def check_bounds(self, stats: CacheStats) -> None:
        assert stats.evictions == 0


class BoundedLayerMachine(LayerMachine):
    """A layer too small for the workload may drop entries at any maintenance pass, but what it
    serves is always the model's current value for the key (cache ⊆ model), a key it dropped
    never comes back by itself, and after a cleanup it is within both bounds."""

    # Sizes of a few thousand bytes: every entry weighs at least ENTRY_OVERHEAD plus its key.
    bounds = {"max_entries": 3, "max_size": 10_000}  # noqa: RUF012

    def check(self, now: float, snapshot: Snapshot) -> None:
        # A write over a bound evicts before it returns: the bounds hold after every step.
        self.check_bounds(snapshot.stats)
        live = self.live_keys(now)
        assert snapshot.present <= live, (
            f"served after expiry or removal: {snapshot.present - live}"
        )
        for key in live - snapshot.present:
            del self.model[key]  # evicted: the model forgets it too
        stats = snapshot.stats
        assert (stats.hits, stats.misses, stats.load_successes) == (
            self.hits,
            self.misses,
            self.loads,
        )
        assert (snapshot.statistics.loads_in_flight, snapshot.statistics.load_waiters) == (0, 0)

    def check_read(self, key: str, now: float, value: object) -> None:
        entry = self.live(key, now)
        if value is MISSING:
            self.misses += 1
        else:
            assert entry is not None, f"{key!r} served after it expired or left: {value!r}"
            assert value == entry.value
            self.hit(entry, now)

    def check_load(self, write: Write, now: float, result: object, calls: int) -> None:
        key, value, ttl, tags, size = write
        if calls == 0:
            self.check_read(key, now, result)  # a hit: the model's value
        else:
            assert (result, calls) == (value, 1)
            self.misses += 1
            self.loads += 1
            self.store(key, value, ttl, tags, size, now)

    def check_delete(self, deleted: bool, was_live: bool) -> None:
        assert was_live or not deleted

    def check_removed(self, removed: int, selected: set[str], now: float) -> None:
        assert removed <= len(selected & self.live_keys(now))

    def check_bounds(self, stats: CacheStats) -> None:
        assert stats.entries <= 3
        assert stats.size_bytes <= 10_000

    @rule(
        key=KEYS,
        value=VALUES,
        ttl=TTLS,
        tags=TAGS,
        size=st.sampled_from([1_000, 3_000, 6_000, 10_001]),
    )
    def set_sized(self, key: str, value: int, ttl: Any, tags: list[str], size: int) -> None:
        now, read_back, snapshot = self.run(write_nowait, self.layer, key, value, ttl, tags, size)
        if size > 10_000:
            # Larger than max_size: not stored, and the key's older value is gone too.
            assert read_back is MISSING
            self.misses += 1
            self.model.pop(key, None)
        else:
            self.check_write((key, value, ttl, tags, size), now, read_back)
        self.check(now, snapshot)

    def check_write(self, write: Write, now: float, read_back: object) -> None:
        key, value, ttl, tags, size = write
        if read_back is MISSING:
            # Over a bound, the write evicted at once, and the policy's admission (lfu, tiered)
            # preferred what was there: the new value itself left.
            self.model.pop(key, None)
            self.misses += 1
        else:
            assert read_back == value
            self.store(key, value, ttl, tags, size, now)
            self.check_read(key, now, read_back)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("machine", [LayerMachine, BoundedLayerMachine])
def test_layer_matches_the_model(backend: str, machine: type[LayerMachine]) -> None:
    with anyio.from_thread.start_blocking_portal(*manual_time_backend(backend)) as portal:
        run_state_machine_as_test(lambda: machine(portal), settings=SETTINGS)
