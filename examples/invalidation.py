"""Invalidation: by key, by glob pattern, by hierarchical tag, across every layer.

Run: python examples/invalidation.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

import rgruntime


async def main() -> None:
    async with rgruntime.open_runtime() as runtime:
        responses = runtime.layer("response")
        await responses.set("weather_paris", "sunny")
        await responses.set("weather_london", "rain")
        await responses.set("news_today", "...")
        await responses.set("phone_x", "$999", tags=["products:electronics:phones"])
        await responses.set("laptop_y", "$1299", tags=["products:electronics:laptops"])
        await responses.set("chair_z", "$99", tags=["products:furniture"])
        await runtime.layer("tool").set("catalog_page", "<html>", tags=["products"])

        print("by key:", await responses.invalidate(key="news_today"))
        # The literal prefix "weather_" limits the search to the keys that share it.
        print("by pattern weather_*:", await responses.invalidate(pattern="weather_*"))
        # A parent tag removes its children.
        print(
            "by tag products:electronics:",
            await responses.invalidate(tags=["products:electronics"]),
        )
        # Across every layer at once.
        print("runtime-wide by tag products:", await runtime.invalidate(tags=["products"]))
        print("left in response:", runtime.stats().layers["response"].entries)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
