"""Measure the memory a layer spends per entry beyond its key and value (``ENTRY_OVERHEAD``).

``python -m benchmarks.sizing_overhead [--entries N] [--strategy S ...]``

Method: build N distinct keys and N distinct small values first (so they are not part of what is
traced), open a runtime whose ``tool`` layer has a byte budget far above what is written (so the
policy tracks sizes but never evicts), start ``tracemalloc``, ``set_nowait`` every entry (a
maintenance pass every 4,096 writes, as the write buffer would), run ``cleanup()``, and divide
the traced growth by N. What remains is everything the layer allocates per entry: the ``Entry``
object, its slot in the entry map, the timer-index tuple and its deadline float, the policy's
record, the key index. The figure moves with the dict and list growth steps, so N is large
(200,000 by default) and the constant in ``rgruntime.sizing`` is the largest figure over the
strategies, rounded up. Re-run this after changing the layer's internals and update the constant.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc

import anyio

import rgruntime
from rgruntime.sizing import ENTRY_OVERHEAD

_STRATEGIES = ("lru", "lfu", "ttl", "tiered", "cost")


async def measure_entry_overhead(entries: int, strategy: str) -> tuple[float, float, float]:
    """Traced growth per entry, and the mean key and value sizes (not part of the growth).

    Also imported by tests/test_sizing.py, which checks ENTRY_OVERHEAD against it.
    """
    keys = [f"tool:k{i:07d}" for i in range(entries)]
    values = [1_000_000 + i for i in range(entries)]  # distinct ints, outside the small-int cache
    config = {"max_size": "100GB", "layers": {"tool": {"strategy": strategy}}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("tool")
        await layer.cleanup()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for index, (key, value) in enumerate(zip(keys, values, strict=True)):
            layer.set_nowait(key, value, size=64)
            if index % 4096 == 4095:
                await layer.cleanup()
        await layer.cleanup()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert layer.stats().entries == entries, "every entry must still be stored"
    key_bytes = sum(map(sys.getsizeof, keys)) / entries
    value_bytes = sum(map(sys.getsizeof, values)) / entries
    return (after - before) / entries, key_bytes, value_bytes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing_overhead")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--strategy", action="append", choices=_STRATEGIES)
    arguments = parser.parse_args()
    worst = 0.0
    for strategy in arguments.strategy or _STRATEGIES:
        overhead, key_bytes, value_bytes = anyio.run(
            measure_entry_overhead, arguments.entries, strategy
        )
        worst = max(worst, overhead)
        print(
            f"{strategy:>7}: {overhead:7.1f} B per entry beyond its key ({key_bytes:.0f} B) "
            f"and value ({value_bytes:.0f} B), {arguments.entries:,} entries"
        )
    print(f"largest: {worst:.1f} B per entry; rgruntime.sizing.ENTRY_OVERHEAD = {ENTRY_OVERHEAD}")


if __name__ == "__main__":
    main()
