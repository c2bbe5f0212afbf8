"""The other process of tests/remote/test_processes.py: a runtime on a shared Redis server,
driven by one command per line on stdin, answering one line per command on stdout.

Commands: ``hold KEY`` (read until a near copy is kept; answers its value), ``until-changed KEY
VALUE`` (read the near copy until it is no longer VALUE; answers what it became), ``load KEY``
(``get_or_load`` with a loader that takes 0.5 s; answers the value and this process's loader
calls), ``quit``.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

import rgruntime
from rgruntime import MISSING


async def main(url: str, prefix: str) -> None:
    config = {"cache_backend": {"type": "redis", "url": url, "prefix": prefix}}
    async with rgruntime.open_runtime(config) as runtime:
        layer = runtime.layer("response")
        loads = 0

        async def loader() -> str:
            nonlocal loads
            loads += 1
            await anyio.sleep(0.5)
            return "loaded by peer"

        def answer(*words: Any) -> None:
            print(*words, flush=True)

        answer("ready")
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            command, *arguments = line.split() or ["quit"]
            if command == "quit":
                return
            key = arguments[0]
            if command == "hold":
                while layer.get_nowait(key, MISSING) is MISSING:
                    await layer.get(key)
                    await anyio.sleep(0.005)
                answer(layer.get_nowait(key))
            elif command == "until-changed":
                # Polled: the change arrives through the store's channel, with no event here.
                while layer.get_nowait(key, MISSING) == arguments[1]:  # noqa: ASYNC110
                    await anyio.sleep(0.001)
                answer(await layer.get(key, "MISSING"))
            elif command == "load":
                answer(await layer.get_or_load(key, loader), loads)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], backend=sys.argv[3])
