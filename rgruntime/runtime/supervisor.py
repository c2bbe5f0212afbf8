"""The supervisor actor: starts the layer actors in one task group and coordinates what crosses
layers.

Its inbox carries ``AddLayer`` (start one more layer actor while running), ``StartService``
(start another actor, such as a semantic index, in the same task group, so that it lives and
stops with the layers) and ``InvalidateAll`` (fan one invalidation out to every layer and add up
what went). Routing cross-layer work through
one task gives it one order: two runtime-wide invalidations never interleave layer by layer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

import anyio
import anyio.abc

from rgruntime.config import LayerConfig
from rgruntime.errors import ConfigError, RuntimeClosedError
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.budgets import rebalance
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.layer import Layer, layer_class
from rgruntime.runtime.layer_actor import LayerActor

__all__ = ["Supervisor"]

_INBOX_SIZE: Final = 16


class _AddLayer:
    __slots__ = ("config", "done", "layer")

    def __init__(self, config: LayerConfig) -> None:
        self.config = config
        self.done = anyio.Event()
        self.layer: Layer | None = None


class _StartService:
    __slots__ = ("done", "error", "function", "name", "started")

    def __init__(self, function: Callable[..., Coroutine[Any, Any, Any]], name: str) -> None:
        self.function = function
        self.name = name
        self.done = anyio.Event()
        self.started = False
        self.error: Exception | None = None


class _InvalidateAll:
    __slots__ = ("done", "removed", "selection")

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.done = anyio.Event()
        self.removed: int | None = None


class Supervisor:
    """Owns the layers of one runtime (see the module documentation)."""

    def __init__(
        self,
        configs: dict[str, LayerConfig],
        clock: LoopClock,
        rebalance_interval: float | None = None,
    ) -> None:
        self._clock = clock
        self._configs = configs
        self._rebalance_interval = rebalance_interval
        #: Rebalancing periods that moved budget between layers.
        self.rebalances = 0
        self.layers: dict[str, Layer] = {}
        self._send, self._receive = anyio.create_memory_object_stream[Any](_INBOX_SIZE)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        # Both ends close when the supervisor stops (an unclosed stream warns when collected).
        async with self._send, self._receive, anyio.create_task_group() as layer_group:
            for config in self._configs.values():
                await self._start_layer(layer_group, config)
            shared = [layer for layer in self.layers.values() if layer.config.shared_budget]
            if self._rebalance_interval is not None and len(shared) > 1:
                layer_group.start_soon(
                    self._rebalance_budgets, shared, self._rebalance_interval, name="budgets"
                )
            task_status.started()
            message: _AddLayer | _StartService | _InvalidateAll | None = None
            try:
                async for message in self._receive:
                    if isinstance(message, _AddLayer):
                        if message.config.name not in self.layers:
                            message.layer = await self._start_layer(layer_group, message.config)
                    elif isinstance(message, _StartService):
                        try:
                            await layer_group.start(message.function, name=message.name)
                            message.started = True
                        except Exception as error:
                            # A service that fails to start is its caller's error: the layers
                            # and the other services go on.
                            message.error = error
                    else:
                        message.removed = await self._invalidate_all(message.selection)
                    message.done.set()
            finally:
                # Closing: whoever waits for an answer gets "closed" (an unset result) at once.
                if message is not None:
                    message.done.set()
                while True:
                    try:
                        self._receive.receive_nowait().done.set()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break

    async def add_layer(self, config: LayerConfig) -> Layer:
        if config.name in self.layers:
            raise ConfigError("layer", config.name, "a name that is not taken yet")
        message = _AddLayer(config)
        await self._post(message)
        if message.layer is None:
            if config.name in self.layers:
                raise ConfigError("layer", config.name, "a name that is not taken yet")
            raise RuntimeClosedError("the runtime closed before the layer could start")
        return message.layer

    async def start_service(
        self, function: Callable[..., Coroutine[Any, Any, Any]], name: str
    ) -> None:
        """Start ``await task_group.start(function)`` in the layers' task group.

        ``function`` must accept ``task_status`` and report itself started; it is cancelled
        when the runtime closes, with the layers.
        """
        message = _StartService(function, name)
        await self._post(message)
        if message.error is not None:
            raise message.error
        if not message.started:
            raise RuntimeClosedError(f"the runtime closed before {name} could start")

    async def invalidate_all(self, selection: Selection) -> int:
        message = _InvalidateAll(selection)
        await self._post(message)
        if message.removed is None:
            raise RuntimeClosedError("the runtime closed during the invalidation")
        return message.removed

    async def _post(self, message: _AddLayer | _StartService | _InvalidateAll) -> None:
        try:
            await self._send.send(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise RuntimeClosedError("the runtime is closed") from None
        await message.done.wait()

    async def _start_layer(self, group: anyio.abc.TaskGroup, config: LayerConfig) -> Layer:
        layer = layer_class(config)(config, self._clock)
        await group.start(LayerActor(layer).run, name=f"rgruntime layer {config.name}")
        self.layers[config.name] = layer
        return layer

    async def _rebalance_budgets(self, layers: list[Layer], interval: float) -> None:
        """Every ``interval`` seconds, move a step of budget toward the most valuable layer."""
        minimums = {
            layer.name: int((layer.config.max_size or 0) * layer.config.min_share)
            for layer in layers
        }
        # A twentieth of the shared budget per period: fast enough to follow a shift in
        # traffic within minutes, slow enough not to chase noise.
        step = max(1, sum(layer.config.max_size or 0 for layer in layers) // 20)
        while True:
            await anyio.sleep(interval)
            actors = {layer.name: layer._require_actor() for layer in layers}
            reports = {name: actor.budget_report(minimums[name]) for name, actor in actors.items()}
            budgets = rebalance(reports, step)
            if budgets != {name: report.budget for name, report in reports.items()}:
                self.rebalances += 1
                for name, size in budgets.items():
                    actors[name].set_max_size(size)

    async def _invalidate_all(self, selection: Selection) -> int:
        removed = 0
        for layer in list(self.layers.values()):
            removed += await layer.invalidate_selection(selection)
        return removed
