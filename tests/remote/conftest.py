"""Fixtures of the remote-layer tests: a runtime whose layers sit on each kind of backend.

``layer_backend`` is parametrized over the embedded default and every store (the in-process
reference store, Redis, a 3-node Redis Cluster, Memcached, on real servers started once per
session: tests/conftest.py). Each test gets its own key prefix; two runtimes opened from one
``LayerBackend`` share a store, as two processes share a server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import anyio
import pytest

import rgruntime
from rgruntime import Runtime
from rgruntime.runtime.dependencies import record_read, recording
from tests.stores.conftest import StoreFactory

#: The longest the news of a change may take to reach another runtime here (a loaded machine;
#: the benchmark measures the real figure).
PROPAGATION_LIMIT: Final = 5.0

#: The embedded default, then every store: the layer contract holds on each.
LAYER_BACKENDS: Final = ("embedded", "memory", "redis", "redis_cluster", "memcached")
#: The backends whose stores publish invalidations to other processes.
COHERENT_BACKENDS: Final = ("memory", "redis", "redis_cluster")


class LayerBackend:
    """Runtimes on one backend; with a store, all of them share it (as processes would)."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._stores = None if kind == "embedded" else StoreFactory(kind, request)

    @property
    def remote(self) -> bool:
        return self._stores is not None

    def backend(self, **options: Any) -> Any:
        """A ``cache_backend`` value for one more runtime (None: embedded)."""
        if self._stores is None:
            return None
        if self.kind == "memory":
            return self._stores.make()  # a store object of its own on the shared server
        return self._stores.config(**options)

    def store(self) -> Any:
        """A store of its own on the shared server (to look behind the layers)."""
        assert self._stores is not None
        return self._stores.make()

    def config(self, settings: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        config = dict(settings or {})
        backend = self.backend(**options)
        if backend is not None:
            config["cache_backend"] = backend
        return config

    @contextlib.asynccontextmanager
    async def runtime(
        self, settings: dict[str, Any] | None = None, **options: Any
    ) -> AsyncIterator[Runtime]:
        async with rgruntime.open_runtime(self.config(settings, **options)) as runtime:
            yield runtime


@pytest.fixture(params=LAYER_BACKENDS)
def layer_backend(request: pytest.FixtureRequest) -> LayerBackend:
    return LayerBackend(request.param, request)


@pytest.fixture(params=COHERENT_BACKENDS)
def coherent_backend(request: pytest.FixtureRequest) -> LayerBackend:
    return LayerBackend(request.param, request)


async def eventually(
    condition: Callable[[], Awaitable[bool] | bool], *, limit: float = PROPAGATION_LIMIT
) -> None:
    """Wait until ``condition()`` holds (awaited if it returns an awaitable); fail after
    ``limit`` seconds. Another runtime's state has no event to wait on: poll it."""
    with anyio.fail_after(limit):
        while True:
            outcome = condition()
            if not isinstance(outcome, bool):
                outcome = await outcome
            if outcome:
                return
            await anyio.sleep(0.005)


async def compute_a_chain(runtime: Runtime) -> None:
    """tool:weather (tagged city:paris) -> model:summary -> response:answer, each computed from
    the one before, the edges recorded by the runtime's dependency graph (and so on the server
    of remote layers)."""
    await runtime.layer("tool").set("weather", {"temp": 17}, tags=["city:paris"])
    for (source_layer, source), (layer, key, value) in (
        (("tool", "weather"), ("model", "summary", "mild")),
        (("model", "summary"), ("response", "answer", "17 degrees, mild")),
    ):
        with recording(runtime.dependencies) as reads:
            await runtime.layer(source_layer).get(source)
            record_read(source_layer, source)
        assert runtime.dependencies.depend((layer, key), reads)
        await runtime.layer(layer).set(key, value)
