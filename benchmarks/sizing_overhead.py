"""Measure the memory a layer spends per entry beyond its key and value (``ENTRY_OVERHEAD``).

``python -m benchmarks.sizing_overhead [--entries N] [--strategy S ...] [--speed]``

``--speed`` times the estimate instead, beside ``sys.getsizeof`` of the same string measured in
the same interleaved rounds (the reference machine is shared: read the ratios).

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
import timeit
import tracemalloc
from collections.abc import Callable

import anyio

import rgruntime
from rgruntime.sizing import ENTRY_OVERHEAD, estimate_size, weigh

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


def print_speed() -> None:
    text = "x" * 200
    message = {"role": "user", "content": "hello there", "n": 3}
    nested = {
        "docs": [{"id": i, "text": f"{i:04d}" * 250, "tags": ["a", "b"]} for i in range(1000)]
    }
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("sys.getsizeof(200-char str)", lambda: sys.getsizeof(text), 200_000),
        ("estimate_size(200-char str)", lambda: estimate_size(text), 200_000),
        ("weigh(key, 200-char str, None)", lambda: weigh("tool:k0000001", text, None), 200_000),
        ("estimate_size(3-key dict)", lambda: estimate_size(message), 20_000),
        (
            f"estimate_size({estimate_size(nested):,} B in 5,001 objects)",
            lambda: estimate_size(nested),
            20,
        ),
    ]
    best = dict.fromkeys((name for name, _, _ in cases), float("inf"))
    for _ in range(7):  # interleaved rounds: the machine's load hits every case alike
        for name, call, number in cases:
            best[name] = min(best[name], timeit.timeit(call, number=number) / number)
    for name, seconds in best.items():
        print(f"{name:50} {seconds * 1e9:14,.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing_overhead")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--strategy", action="append", choices=_STRATEGIES)
    parser.add_argument("--speed", action="store_true", help="time the estimate instead")
    arguments = parser.parse_args()
    if arguments.speed:
        print_speed()
        return
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
