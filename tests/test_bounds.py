"""Bounds: max_entries, max_size (bytes or "100MB"), the lru and ttl strategies, oversize entries,
and the runtime's max_size split across layers.

Eviction runs in the layer's actor, in maintenance passes: between passes a layer may briefly hold
more than its bounds (writes never wait for eviction), after ``cleanup()`` it never does.
"""

from __future__ import annotations

import pytest

import rgruntime
from rgruntime import MISSING, Layer
from rgruntime.sizing import weigh

pytestmark = pytest.mark.anyio


def live_keys(layer: Layer, keys: list[str]) -> list[str]:
    return [key for key in keys if key in layer]


async def test_max_entries_holds_after_cleanup() -> None:
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 3}}}) as runtime:
        layer = runtime.layer("small")
        for i in range(10):
            await layer.set(f"k{i}", i)
        await layer.cleanup()
        stats = layer.stats()
        assert (stats.entries, stats.evictions) == (3, 7)
        assert layer.statistics().policy_entries == 3


@pytest.mark.parametrize(
    ("max_size", "limit"),
    [
        (4096, 4096),
        ("512KB", 512_000),
        ("100MB", 100_000_000),
        ("1.5GB", 1_500_000_000),
        ("64MiB", 64 * 1024**2),
    ],
)
async def test_max_size_as_bytes_or_text(max_size: object, limit: int) -> None:
    async with rgruntime.open_runtime({"layers": {"blobs": {"max_size": max_size}}}) as runtime:
        layer = runtime.layer("blobs")
        assert layer.stats().max_size == limit
        entry_size = limit // 4 + 1  # four of them are over the limit, three are not
        for i in range(6):
            await layer.set(f"k{i}", i, size=entry_size)
        await layer.cleanup()
        stats = layer.stats()
        assert stats.size_bytes <= limit
        assert (stats.entries, stats.size_bytes, stats.evictions) == (3, 3 * entry_size, 3)


async def test_default_entry_sizes_are_estimated() -> None:
    async with rgruntime.open_runtime({"layers": {"docs": {"max_size": "100KB"}}}) as runtime:
        layer = runtime.layer("docs")
        document = "x" * 30_000
        for i in range(5):
            await layer.set(f"doc{i}", document + str(i))
        await layer.cleanup()
        stats = layer.stats()
        assert stats.entries == 3
        # Each entry weighs its value, its key and the layer's measured per-entry overhead.
        assert stats.size_bytes == 3 * weigh("doc0", document + "0", None)


async def test_a_layer_is_never_over_either_bound_after_cleanup() -> None:
    config = {"layers": {"mixed": {"max_entries": 20, "max_size": 2000}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("mixed")
        for i in range(300):
            # Sizes cycle so that sometimes the count binds and sometimes the bytes.
            await layer.set(f"k{i % 37}", i, size=(i * 53) % 400)
            if i % 3 == 0:
                await layer.get(f"k{(i * 7) % 37}")
            if i % 25 == 0:
                await layer.cleanup()
                stats = layer.stats()
                assert stats.entries <= 20
                assert stats.size_bytes <= 2000
        await layer.cleanup()
        stats = layer.stats()
        assert stats.entries <= 20
        assert stats.size_bytes <= 2000
        assert stats.evictions > 0


async def test_lru_keeps_the_keys_hit_most_recently() -> None:
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 4}}}) as runtime:
        layer = runtime.layer("small")
        keys = [f"k{i}" for i in range(6)]
        for key in keys[:4]:
            await layer.set(key, key)
        # The oldest writes, but hit since: they outlive newer entries nobody read. A write
        # over the bound evicts before it returns, so the policy must have heard the hits.
        assert await layer.get("k0") == "k0"
        assert await layer.get("k2") == "k2"
        await layer.set("k4", "k4")
        await layer.set("k5", "k5")
        assert live_keys(layer, keys) == ["k0", "k2", "k4", "k5"]
        assert layer.statistics().second_chances == 0  # every hit reached the policy in order

        # Recency is now k0, k2 (hit), k4, k5 (written). Then k4 is hit and k6 written: the
        # least recently used, k0, leaves; then k0 comes back and k2 leaves.
        await layer.get("k4")
        await layer.set("k6", "k6")
        assert live_keys(layer, [*keys, "k6"]) == ["k2", "k4", "k5", "k6"]
        await layer.set("k0", "k0")
        assert live_keys(layer, [*keys, "k6"]) == ["k0", "k4", "k5", "k6"]


async def test_lru_evicts_in_write_order_without_hits() -> None:
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 3}}}) as runtime:
        layer = runtime.layer("small")
        keys = [f"k{i}" for i in range(6)]
        for key in keys:
            await layer.set(key, key)
            await layer.cleanup()
        assert live_keys(layer, keys) == ["k3", "k4", "k5"]
        await layer.set("k3", "again")  # an overwrite is a use: k3 becomes the newest
        await layer.set("k6", "k6")
        await layer.cleanup()
        assert live_keys(layer, [*keys, "k6"]) == ["k3", "k5", "k6"]


async def test_ttl_strategy_evicts_the_nearest_deadline_first() -> None:
    config = {"layers": {"timed": {"max_entries": 3, "strategy": "ttl", "ttl": None}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("timed")
        await layer.set("forever-1", 1)
        await layer.set("late", 1, ttl=500)
        await layer.set("soon", 1, ttl=10)
        await layer.set("forever-2", 1)
        await layer.set("middle", 1, ttl=100)
        # Hits do not protect an entry under this strategy: it goes by deadline alone.
        for _ in range(5):
            await layer.get("soon")
        await layer.cleanup()
        keys = ["forever-1", "late", "soon", "forever-2", "middle"]
        assert live_keys(layer, keys) == ["forever-1", "late", "forever-2"]
        await layer.set("new", 1, ttl=1000)
        await layer.cleanup()
        # Entries without a deadline go last, and then the oldest of them first.
        assert live_keys(layer, [*keys, "new"]) == ["forever-1", "forever-2", "new"]
        await layer.set("newest", 1, ttl=2000)
        await layer.set("another", 1)
        await layer.cleanup()
        assert live_keys(layer, [*keys, "new", "newest", "another"]) == [
            "forever-1",
            "forever-2",
            "another",
        ]


async def test_an_oversize_entry_is_not_stored_and_drops_the_older_value() -> None:
    async with rgruntime.open_runtime({"layers": {"blobs": {"max_size": 10_000}}}) as runtime:
        layer = runtime.layer("blobs")
        await layer.set("other", "kept", size=1000)
        await layer.set("k", "small", size=1000)
        await layer.set("k", "huge", size=10_001)
        assert await layer.get("k", MISSING) is MISSING
        assert await layer.get("other") == "kept"
        await layer.cleanup()
        stats = layer.stats()
        assert (stats.oversize_rejections, stats.entries, stats.size_bytes) == (1, 1, 1000)
        assert stats.evictions == 0  # nothing else had to make room
        # Exactly max_size is not oversize: it is stored.
        await layer.delete("other")
        await layer.set("k", "fits", size=10_000)
        await layer.cleanup()
        assert await layer.get("k") == "fits"
        assert layer.stats().oversize_rejections == 1


async def test_an_oversize_load_is_returned_but_not_stored() -> None:
    async with rgruntime.open_runtime({"layers": {"blobs": {"max_size": 1000}}}) as runtime:
        layer = runtime.layer("blobs")

        async def loader() -> str:
            return "huge"

        assert await layer.get_or_load("k", loader, size=5000) == "huge"
        assert "k" not in layer
        assert layer.stats().oversize_rejections == 1


async def test_runtime_max_size_is_split_across_layers() -> None:
    async with rgruntime.open_runtime({"max_size": "100MB"}) as runtime:
        stats = runtime.stats()
        assert {name: layer.max_size for name, layer in stats.layers.items()} == dict.fromkeys(
            ("response", "session", "model", "tool", "memory"), 20000000
        )
        assert stats.max_size == 100_000_000


async def test_each_layer_is_held_to_its_share() -> None:
    async with rgruntime.open_runtime({"max_size": 50_000}) as runtime:
        tool = runtime.layer("tool")  # 10,000 bytes of the 50,000
        for i in range(10):
            await tool.set(f"k{i}", i, size=3000)
        await tool.cleanup()
        assert tool.stats().size_bytes == 9000
        assert runtime.layer("model").stats().size_bytes == 0


async def test_bounds_apply_to_layers_added_while_running() -> None:
    async with rgruntime.open_runtime() as runtime:
        layer = await runtime.add_layer("added", max_entries=2, max_size="10KB")
        for i in range(5):
            await layer.set(f"k{i}", i, size=1000)
        await layer.cleanup()
        assert layer.stats().entries == 2
        for i in range(5):
            await layer.set(f"big{i}", i, size=6000)
        await layer.cleanup()
        assert (layer.stats().entries, layer.stats().size_bytes) == (1, 6000)


async def test_a_new_write_outlives_older_entries_hit_before_it() -> None:
    # Every resident entry was hit, then a new one was written: LRU evicts the oldest hit,
    # not the new write (which a plain second-chance sweep would evict first).
    async with rgruntime.open_runtime({"layers": {"small": {"max_entries": 3}}}) as runtime:
        layer = runtime.layer("small")
        for key in ("a", "b", "c"):
            await layer.set(key, key)
        await layer.cleanup()
        for key in ("a", "b", "c"):
            assert await layer.get(key) == key
        await layer.set("d", "d")
        await layer.cleanup()
        assert live_keys(layer, ["a", "b", "c", "d"]) == ["b", "c", "d"]
