"""The curve of a live layer: requests of a shared trace go through a layer's read path, the
layer's access observer feeds the sampler at its maintenance passes, and the curve the analysis
reports is checked against libCacheSim's exact LRU on the same requests.

The trace is web12's first 20,000 requests (a live layer serves about 30,000 requests a second
in a test; the whole trace set is the pure sampler's acceptance, tests/observe/test_mrc_traces.py).
"""

from __future__ import annotations

from pathlib import Path

import libcachesim
import pytest

from benchmarks.analysis import exact_lru_miss_ratio, keys_of, read_prefix
from rgruntime import open_runtime
from rgruntime.observe import Operations
from rgruntime.observe.shards import sizes_between

pytestmark = pytest.mark.anyio

REQUESTS = 20_000


async def _value() -> int:
    return 1


async def test_live_layer_curve_matches_exact_lru(tmp_path: Path) -> None:
    raw = read_prefix("cache2k_web12.u64.gz", REQUESTS)
    keys = [str(key) for key in keys_of(raw)]
    async with open_runtime({"layers": {"trace": {"ttl": None}}}) as runtime:
        operations = Operations(runtime)
        layer = runtime.layer("trace")
        for key in keys:
            await layer.get_or_load(key, _value)
        await operations.settle()
        unique = len(set(keys))
        sizes = sizes_between(round(unique * 0.001), round(unique * 0.5), 10)
        curve = operations.monitor("trace").sampler.curve(sizes)
        analysis = operations.analyze(target_hit_rate=50)
    path = tmp_path / "web12.bin"
    path.write_bytes(raw)
    exact = [exact_lru_miss_ratio(libcachesim, path, size) for size in sizes]
    error = 100 * sum(abs(p - e) for p, e in zip(curve.miss_ratios, exact, strict=True)) / 10
    assert error <= 1.0, (sizes, curve.miss_ratios, exact)
    assert curve.requests == REQUESTS
    recommended = analysis.layers["trace"].recommended_entries
    assert recommended is not None
    replayed = 100 * (1 - exact_lru_miss_ratio(libcachesim, path, recommended))
    assert replayed >= 50 - 2
