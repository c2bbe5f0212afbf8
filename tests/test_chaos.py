"""Chaos: faults injected at random into loaders, sizers and listeners never break the runtime.

A Hypothesis state machine drives one runtime (through an anyio blocking portal, on asyncio and on
trio) with a layer whose sizer fails on some values and whose removal listener fails on some
keys, and loads whose loaders fail in every way a loader can: an ``Exception``, a
``BaseException`` that is not one, a cancellation no scope of the runtime caused, a value the
sizer cannot weigh. After every step:

- the caller that caused a fault got it as an error, and nobody else did;
- the layer holds exactly what a plain model says (no entry lost, corrupted or left behind by a
  failed write or load), and its byte count is the sum of its entries' weights;
- every layer of the runtime still answers a write, a read and a load, and the runtime is open.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

import rgruntime
from rgruntime import MISSING, InvalidArgumentError, Layer, LoadInterruptedError, Runtime
from rgruntime.sizing import weigh
from tests.support import BACKENDS, raise_a_stray_cancellation

SETTINGS = settings(max_examples=60, stateful_step_count=25, deadline=None)

KEYS = st.sampled_from(["a", "b", "c", "d"])
FAULTS = st.sampled_from(["none", "exception", "base_exception", "stray_cancel", "unweighable"])


class Unweighable:
    """A value the chaos layer's sizer refuses."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unweighable)

    __hash__ = object.__hash__


class LoaderFault(Exception):
    pass


class LoaderBaseFault(BaseException):
    pass


def chaos_sizer(value: object) -> int:
    if isinstance(value, Unweighable):
        raise KeyError("this value cannot be weighed")
    return 64


def listener(layer: str, key: str, reason: str) -> None:
    if key in ("b", "d"):
        raise RuntimeError(f"listener fault on {key!r} ({reason})")


async def add_chaos_layer(runtime: Runtime) -> Layer:
    layer = await runtime.add_layer("chaos", sizer=chaos_sizer)
    layer.add_removal_listener(listener)
    return layer


async def make_loader_result(layer: Layer, key: str, value: int, fault: str) -> tuple[str, Any]:
    async def loader() -> object:
        await anyio.lowlevel.checkpoint()
        if fault == "exception":
            raise LoaderFault(key)
        if fault == "base_exception":
            raise LoaderBaseFault(key)
        if fault == "stray_cancel":
            await raise_a_stray_cancellation()
        if fault == "unweighable":
            return Unweighable()
        return value

    try:
        return "value", await layer.get_or_load(key, loader)
    except (LoaderFault, LoaderBaseFault, LoadInterruptedError, InvalidArgumentError) as error:
        return "error", type(error)


async def serving(runtime: Runtime) -> bool:
    """Every layer still answers a write, a read and a load; the runtime is open."""

    async def loader() -> str:
        return "loaded"

    for name, layer in runtime.layers.items():
        if not layer.config.enabled:
            continue
        await layer.set("__probe__", name, size=1000)
        assert await layer.get("__probe__") == name
        assert await layer.delete("__probe__")
        assert await layer.get_or_load("__probe_load__", loader) == "loaded"
        assert await layer.delete("__probe_load__")
    return runtime.is_open


EXPECTED_ERRORS = {
    "exception": LoaderFault,
    "base_exception": LoaderBaseFault,
    "stray_cancel": LoadInterruptedError,
    "unweighable": InvalidArgumentError,
}


class ChaosMachine(RuleBasedStateMachine):
    def __init__(self, portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__()
        self.portal = portal
        self.model: dict[str, object] = {}
        self.context: Any = None

    @initialize()
    def open(self) -> None:
        # One context manager entered and left through the portal (entering and leaving a task
        # group in two separate portal calls is not allowed).
        self.context = self.portal.wrap_async_context_manager(rgruntime.open_runtime())
        self.runtime = self.context.__enter__()
        self.layer = self.portal.call(add_chaos_layer, self.runtime)

    def teardown(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)

    def check(self) -> None:
        snapshot = self.portal.call(self.snapshot)
        assert snapshot == self.model
        stats = self.layer.stats()
        assert stats.entries == len(self.model)
        assert stats.size_bytes == sum(
            weigh(key, value, None, chaos_sizer) for key, value in self.model.items()
        )
        assert self.portal.call(serving, self.runtime)

    async def snapshot(self) -> dict[str, object]:
        return {key: self.layer.peek(key) for key in self.layer.keys()}  # noqa: SIM118

    @rule(key=KEYS, value=st.integers(0, 100), unweighable=st.booleans())
    def set(self, key: str, value: int, unweighable: bool) -> None:
        written: object = Unweighable() if unweighable else value
        if unweighable:
            with pytest.raises(InvalidArgumentError) as raised:
                self.portal.call(functools.partial(self.layer.set, key, written))
            assert raised.value.field == "size"
        else:
            self.portal.call(functools.partial(self.layer.set, key, written))
            self.model[key] = value
        self.check()

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        assert self.portal.call(self.layer.get, key, MISSING) == self.model.get(key, MISSING)
        self.check()

    @rule(key=KEYS, value=st.integers(0, 100), fault=FAULTS)
    def load(self, key: str, value: int, fault: str) -> None:
        kind, result = self.portal.call(make_loader_result, self.layer, key, value, fault)
        if key in self.model:
            assert (kind, result) == ("value", self.model[key])  # a hit: the loader never ran
        elif fault == "none":
            assert (kind, result) == ("value", value)
            self.model[key] = value
        else:
            assert (kind, result) == ("error", EXPECTED_ERRORS[fault])
        self.check()

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.portal.call(self.layer.delete, key) == (key in self.model)
        self.model.pop(key, None)
        self.check()

    @rule(key=KEYS, runtime_wide=st.booleans())
    def invalidate(self, key: str, runtime_wide: bool) -> None:
        target = self.runtime if runtime_wide else self.layer
        removed = self.portal.call(functools.partial(target.invalidate, key=key))
        assert removed == (key in self.model)
        self.model.pop(key, None)
        self.check()

    @rule()
    def clear(self) -> None:
        assert self.portal.call(self.layer.clear) == len(self.model)
        self.model.clear()
        self.check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_faults_never_break_the_runtime(backend: str) -> None:
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        run_state_machine_as_test(lambda: ChaosMachine(portal), settings=SETTINGS)
