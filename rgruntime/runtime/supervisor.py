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
from rgruntime.runtime._actor import Mailbox, Request
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.budgets import rebalance
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.layer import Layer, new_layer
from rgruntime.runtime.layer_actor import LayerActor
from rgruntime.runtime.remote_layer import new_remote_layer
from rgruntime.runtime.store_link import StoreLink
from rgruntime.sizing import estimate_size

__all__ = ["Supervisor"]

_INBOX_SIZE: Final = 16

Service = Callable[..., Coroutine[Any, Any, Any]]
Sizer = Callable[[Any], int]
#: The store link of a layer with a remote backend (None: an in-process layer).
LinkFor = Callable[[LayerConfig], StoreLink | None]


class _AddLayer(Request[Layer]):
    __slots__ = ("config", "sizer")

    def __init__(self, config: LayerConfig, sizer: Sizer | None) -> None:
        super().__init__()
        self.config = config
        self.sizer = sizer


class _StartService(Request[None]):
    __slots__ = ("function", "name")

    def __init__(self, function: Service, name: str) -> None:
        super().__init__()
        self.function = function
        self.name = name


class _InvalidateAll(Request[int]):
    __slots__ = ("selection",)

    def __init__(self, selection: Selection) -> None:
        super().__init__()
        self.selection = selection


_SupervisorRequest = _AddLayer | _StartService | _InvalidateAll


class Supervisor:
    """Owns the layers of one runtime (see the module documentation)."""

    def __init__(
        self,
        configs: dict[str, LayerConfig],
        clock: LoopClock,
        rebalance_interval: float | None = None,
        link_for: LinkFor | None = None,
    ) -> None:
        self._clock = clock
        self._link_for = link_for
        self._configs = configs
        self._rebalance_interval = rebalance_interval
        #: Rebalancing periods that moved budget between layers.
        self.rebalances = 0
        self.layers: dict[str, Layer] = {}
        self._actors: dict[str, LayerActor] = {}
        self._mailbox: Mailbox[_SupervisorRequest] = Mailbox("the runtime", _INBOX_SIZE)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            async with anyio.create_task_group() as layer_group:
                for config in self._configs.values():
                    await self._start_layer(layer_group, config)
                # A layer that never evicts cannot give budget away: it is left out.
                shared = [
                    name
                    for name, layer in self.layers.items()
                    if layer.config.shared_budget and layer.config.evictable
                ]
                if self._rebalance_interval is not None and len(shared) > 1:
                    layer_group.start_soon(
                        self._rebalance_budgets, shared, self._rebalance_interval, name="budgets"
                    )
                task_status.started()
                while True:
                    message = await self._mailbox.receive()
                    if message is None:
                        continue
                    try:
                        await self._handle(layer_group, message)
                    except BaseException:
                        message.fail(RuntimeClosedError("the runtime closed during the request"))
                        raise
        finally:
            # Whoever waits for an answer gets RuntimeClosedError at once.
            self._mailbox.close()

    async def _handle(self, group: anyio.abc.TaskGroup, message: _SupervisorRequest) -> None:
        if isinstance(message, _AddLayer):
            if message.config.name in self.layers:
                message.fail(ConfigError("layer", message.config.name, "a name not taken yet"))
            else:
                message.answer(await self._start_layer(group, message.config, message.sizer))
        elif isinstance(message, _StartService):
            try:
                await group.start(message.function, name=message.name)
            except Exception as error:
                # A service that fails to start is its caller's error: the layers and the other
                # services go on.
                message.fail(error)
            else:
                message.answer(None)
        else:
            message.answer(await self._invalidate_all(message.selection))

    async def add_layer(self, config: LayerConfig, sizer: Sizer | None = None) -> Layer:
        if config.name in self.layers:
            raise ConfigError("layer", config.name, "a name that is not taken yet")
        return await self._mailbox.ask(_AddLayer(config, sizer))

    async def start_service(self, function: Service, name: str) -> None:
        """Start ``await task_group.start(function)`` in the layers' task group.

        ``function`` must accept ``task_status`` and report itself started; it is cancelled
        when the runtime closes, with the layers.
        """
        await self._mailbox.ask(_StartService(function, name))

    async def invalidate_all(self, selection: Selection) -> int:
        """Fan ``selection`` out to every layer, one layer after another; the total removed."""
        return await self._mailbox.ask(_InvalidateAll(selection))

    async def _start_layer(
        self, group: anyio.abc.TaskGroup, config: LayerConfig, sizer: Sizer | None = None
    ) -> Layer:
        link = None if self._link_for is None else self._link_for(config)
        if link is None:
            layer, actor = new_layer(config, self._clock, sizer or estimate_size)
        else:
            layer, actor = new_remote_layer(config, self._clock, sizer or estimate_size, link)
        await group.start(actor.run, name=f"rgruntime layer {config.name}")
        if link is not None:
            await group.start(link.run, name=f"rgruntime store writer {config.name}")
        self.layers[config.name] = layer
        self._actors[config.name] = actor
        return layer

    async def _rebalance_budgets(self, names: list[str], interval: float) -> None:
        """Every ``interval`` seconds, move a step of budget toward the most valuable layer."""
        layers = [self.layers[name] for name in names]
        minimums = {
            layer.name: int((layer.config.max_size or 0) * layer.config.min_share)
            for layer in layers
        }
        # A twentieth of the shared budget per period: fast enough to follow a shift in
        # traffic within minutes, slow enough not to chase noise.
        step = max(1, sum(layer.config.max_size or 0 for layer in layers) // 20)
        while True:
            await anyio.sleep(interval)
            actors = {name: self._actors[name] for name in names}
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
