"""The guide's ``tiered`` strategy through a live layer: what is read most ends in ``hot``.

The layer's policy hears every hit (the access log), so keys read far more than the others are
promoted tier by tier and, once in ``hot``, carry the hot tier's TTL.
"""

from __future__ import annotations

import random

import anyio.lowlevel
import pytest

import rgruntime

pytestmark = pytest.mark.anyio

TIERS = [
    {"name": "hot", "size": "20KB", "ttl": 60},
    {"name": "warm", "size": "50KB", "ttl": 600},
    {"name": "cold", "size": "200KB", "ttl": 3600},
]


async def test_keys_read_far_more_than_others_end_in_hot_with_its_ttl() -> None:
    config = {"layers": {"busy": {"strategy": "tiered", "tiers": TIERS, "ttl": 7200}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("busy")
        favourites = [f"favourite:{i}" for i in range(5)]
        for key in favourites:
            await layer.set(key, key)
        rng = random.Random(3)
        reads = 0
        for i in range(5000):  # a busy layer: a stream of new keys, many times its budget
            await layer.set(f"one-off:{i}", i)
            if i % 5 == 0:
                for key in favourites:
                    if await layer.get(key) is None:
                        await layer.set(key, key)  # as a loader would, after an eviction
                    reads += 1
            if rng.random() < 0.3:
                await layer.get(f"one-off:{rng.randrange(i + 1)}")
            if i % 500 == 0:
                await anyio.lowlevel.checkpoint()
        await layer.cleanup()
        assert reads == 5000
        assert layer.stats().evictions > 1000  # it was busy: most one-off keys left
        for key in favourites:
            assert key in layer
            left = layer.ttl(key)
            assert left is not None
            assert left <= 60, f"{key} has {left:.0f} s left: not the hot tier's TTL"
        # Most one-off keys still held are in warm or cold: their TTLs are longer than hot's.
        others = [key for key in layer.keys() if key.startswith("one-off:")]  # noqa: SIM118
        longer = [key for key in others if (layer.ttl(key) or 0) > 60]
        assert len(longer) > len(others) // 2
