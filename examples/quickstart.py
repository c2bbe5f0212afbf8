"""Quick start: a runtime, a layer, set/get, a single-flight load, tags, stats.

Run: python examples/quickstart.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

import rgruntime


async def main() -> None:
    config = {"enabled": True, "default_ttl": 3600, "max_size": "100MB", "strategy": "lru"}
    async with rgruntime.open_runtime(config) as runtime:
        tools = runtime.layer("tool")  # TTL 5 minutes by default

        await tools.set("weather:paris", {"temp": 21}, tags=["weather", "weather:eu"])
        print("paris:", await tools.get("weather:paris"))

        calls = 0

        async def fetch_london() -> dict[str, int]:
            nonlocal calls
            calls += 1
            await anyio.sleep(0.05)  # a real tool call would go here
            return {"temp": 17}

        async def load_london() -> None:
            await tools.get_or_load("weather:london", fetch_london, tags=["weather:eu"])

        # Ten tasks ask at once: the loader runs once, every task gets its result.
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(load_london)
        print("london:", await tools.get("weather:london"), f"(loader ran {calls} time)")

        # None is a value like any other; MISSING tells a miss apart.
        await tools.set("weather:atlantis", None)
        print("atlantis cached:", await tools.get("weather:atlantis", rgruntime.MISSING) is None)
        mars = await tools.get("weather:mars", rgruntime.MISSING)
        print("mars cached:", mars is not rgruntime.MISSING)

        print("removed by tag:", await runtime.invalidate(tags=["weather"]))
        stats = tools.stats()
        print(f"hits={stats.hits} misses={stats.misses} hit rate={stats.hit_rate:.0f}%")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
