"""Configuration: the guide's dict forms, custom layers, bounds, and the errors bad values raise.

Run: python examples/configuration.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

import rgruntime


async def main() -> None:
    config = {
        "default_ttl": 3600,
        "max_size": "100MB",  # split across the layers that set no max_size of their own
        "strategy": "lru",
        "layers": {
            "tool": {"ttl": "10m", "max_entries": 3},
            "embeddings": {"ttl": "1d", "max_size": "64MiB", "strategy": "ttl"},
        },
    }
    async with rgruntime.open_runtime(config) as runtime:
        for name, layer in runtime.layers.items():
            ttl = "none" if layer.config.ttl is None else f"{layer.config.ttl:g} s"
            print(f"{name:10} ttl={ttl:10} max_size={layer.config.max_size:,} B")

        tools = runtime.layer("tool")
        for n in range(5):
            await tools.set(f"search:{n}", n)
        await tools.cleanup()  # run the actor's maintenance now: evict to the bound
        print("tool entries after 5 writes:", tools.stats().entries, "(max_entries=3)")

        try:
            await tools.set("search:x", "x", ttl="2h")  # above the tool layer's max_ttl of 1 h
        except rgruntime.InvalidArgumentError as error:
            print("refused:", error)

    for bad in ({"max_size": "100XB"}, {"strategy": "fifo"}, {"default_ttl": -5}, {"ttl": 5}):
        try:
            rgruntime.open_runtime(bad)
        except rgruntime.ConfigError as error:
            print(f"ConfigError field={error.field} value={error.value!r}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
