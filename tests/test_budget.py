"""``max_size`` is a memory bound: what a layer holds, traced by tracemalloc, stays near its budget.

Each case writes 200,000 values into a layer of ``max_size="10MB"`` and checks, every 1,000
writes (an await point), that the layer counts no more than its budget, then that the memory the
process gained while holding those entries (keys, values, entries, indices, policy: everything
traced) is within 1.5x the budget. An entry weighs its key, its value (deep) and the measured
per-entry overhead (``rgruntime.sizing.ENTRY_OVERHEAD``), so small values cannot hide behind a
budget that counts only their own bytes.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable

import anyio.lowlevel
import pytest

import rgruntime

pytestmark = pytest.mark.anyio

BUDGET = 10_000_000
WRITES = 200_000


def kilobyte_strings(rng: random.Random, i: int) -> object:
    return f"{i:08d}" + "x" * 1016


_POOL = random.Random(11).randbytes(16_384)


def random_bytes(rng: random.Random, i: int) -> object:
    # A fresh bytes object of a random length (copied from a pool: generating 1.6 GB of random
    # bytes would take longer than everything the test checks).
    return _POOL[rng.randrange(64) : rng.randrange(64) + rng.randint(16, 16_320)]


def tiny_ints(rng: random.Random, i: int) -> object:
    return i


@pytest.mark.parametrize("make_value", [kilobyte_strings, random_bytes, tiny_ints])
async def test_a_layer_holds_no_more_than_its_budget(
    make_value: Callable[[random.Random, int], object],
) -> None:
    rng = random.Random(7)
    async with rgruntime.open_runtime({"layers": {"bounded": {"max_size": "10MB"}}}) as runtime:
        layer = runtime.layer("bounded")
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(WRITES):
                layer.set_nowait(f"entry:{i}", make_value(rng, i))
                if i % 1000 == 999:
                    await anyio.lowlevel.checkpoint()
                    assert layer.stats().size_bytes <= BUDGET
            await layer.cleanup()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        stats = layer.stats()
        assert stats.size_bytes <= BUDGET
        assert stats.evictions > 0  # the workload is many times the budget
        assert held <= 1.5 * BUDGET, f"{held:,} bytes held for a budget of {BUDGET:,}"
