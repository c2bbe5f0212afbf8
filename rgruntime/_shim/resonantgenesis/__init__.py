"""The caching guide's names: ``from resonantgenesis import ResonantGenesis``.

A thin name over rgruntime, shipped in the same distribution, so that the guide's code runs as
it is written:

```python
from resonantgenesis import ResonantGenesis

client = ResonantGenesis(api_key="your_key", cache_config={"max_size": "100MB"})
agent = client.agents.create(name="FAQ Bot")
result = client.sessions.execute(agent_id=agent.id, goal="What are your hours?")
```

:class:`ResonantGenesis` here is the *blocking* client (the guide's synchronous style): the
runtime runs on an event loop in a background thread, each call waits for its result. The
loop is asyncio by default; ``backend="trio"`` (or the environment variable
``RESONANTGENESIS_BACKEND=trio``) runs it on trio. Close it with ``client.close()`` or a
``with`` block; a client left open is closed when the interpreter exits. Code that runs on the
client's loop (event handlers, runners, tools, ``client.run(async_function)``) awaits the
client's methods, as the guide's handlers do.

The async client is :class:`AsyncResonantGenesis` (``rgruntime.ResonantGenesis``):
``async with AsyncResonantGenesis(...) as client:``.
"""

from __future__ import annotations

import os
from typing import Any

from rgruntime import (
    ConfigError,
    InvalidArgumentError,
    RGRuntimeError,
    SessionNotFoundError,
    __version__,
)
from rgruntime import ResonantGenesis as AsyncResonantGenesis
from rgruntime.agents.blocking import BlockingClient

__all__ = [
    "AsyncResonantGenesis",
    "ConfigError",
    "InvalidArgumentError",
    "RGRuntimeError",
    "ResonantGenesis",
    "SessionNotFoundError",
    "__version__",
]

#: The environment variable that picks the event loop of a client opened without ``backend=``.
BACKEND_VARIABLE = "RESONANTGENESIS_BACKEND"

_BACKENDS = ("asyncio", "trio")


def _backend(given: str | None) -> str:
    if given is not None:
        field, value = "backend", given
    else:
        field, value = BACKEND_VARIABLE, os.environ.get(BACKEND_VARIABLE, "asyncio")
    if value not in _BACKENDS:
        raise ConfigError(field, value, "'asyncio' or 'trio'")
    return value


class ResonantGenesis(BlockingClient):
    """The guide's client, blocking: ``client = ResonantGenesis(api_key=..., cache_config=...)``.

    Takes :class:`AsyncResonantGenesis`'s arguments (checked here: a bad one raises
    :class:`ConfigError` naming it), plus ``backend``: ``"asyncio"`` (default) or ``"trio"``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        cache_config: Any = None,
        cache_backend: Any = None,
        *,
        backend: str | None = None,
        **options: Any,
    ) -> None:
        chosen = _backend(backend)
        # Made here, in the caller's thread: a bad argument raises before any loop starts.
        client = AsyncResonantGenesis(api_key, cache_config, cache_backend, **options)
        super().__init__(lambda: client, backend=chosen)
