"""Process B of ``python -m benchmarks distributed`` (c): holds keys near, reports when they go.

``python -m benchmarks._coherence_peer BACKEND CONFIG_JSON`` opens a runtime with CONFIG_JSON on
BACKEND (asyncio or trio), prints ``@@ ready``, then answers commands read from stdin, one a line:

- ``hold KEY TAG LIMIT``: write KEY (tagged TAG) through the ``near`` layer, so that this process
  holds it in its near cache (its own write's invalidation message is ignored: it is its own),
  print ``@@ held``, then poll ``get_nowait(KEY)`` in a tight loop until it no longer returns the
  value written, and print ``@@ changed T`` (T: ``time.monotonic()`` of that poll), or
  ``@@ stale`` if LIMIT seconds pass first;
- ``quit``: close the runtime and exit.

Protocol lines start with ``@@`` so that anything a library prints to stdout is passed over.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Final

import anyio
import anyio.lowlevel

from benchmarks.distributed import MARK, NEAR_LAYER

_MISSING: Final = object()


def _say(*words: object) -> None:
    print(MARK, *words, flush=True)


async def _hold(layer: Any, key: str, tag: str, limit: float) -> None:
    value = f"held {key}".encode()
    await layer.set(key, value, tags=[tag])
    if layer.get_nowait(key, _MISSING) != value:
        raise RuntimeError(f"{key!r} is not held near right after this process wrote it")
    _say("held")
    deadline = time.monotonic() + limit
    get_nowait = layer.get_nowait
    while True:
        if get_nowait(key, _MISSING) != value:
            _say("changed", repr(time.monotonic()))
            return
        if time.monotonic() > deadline:
            _say("stale")
            return
        await anyio.lowlevel.checkpoint()


async def _main(config: dict[str, Any]) -> None:
    from rgruntime import open_runtime

    # One thread reads stdin, between trials only (never while a key is being watched).
    reader = anyio.CapacityLimiter(1)
    async with open_runtime(config) as runtime:
        layer = runtime.layer(NEAR_LAYER)
        _say("ready")
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline, limiter=reader)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] != "hold" or len(words) != 4:
                raise ValueError(f"unknown command {line!r}")
            await _hold(layer, words[1], words[2], float(words[3]))


def main() -> None:
    backend, config = sys.argv[1], json.loads(sys.argv[2])
    anyio.run(_main, config, backend=backend)


if __name__ == "__main__":
    main()
