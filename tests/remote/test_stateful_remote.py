"""A Hypothesis state machine drives a remote layer against a plain model, on every store.

Two runtimes share the store: ``writer`` (a near cache in front of the store) takes every
operation, ``reader`` has no near cache, so each of its reads asks the server. After every step
both must show exactly the model: the writer through its near copies and the server, the reader
through the server alone. TTLs are left to the contract tests (the servers keep real time).
Each example gets a fresh prefix; the runtimes run in an event loop in another thread (a blocking
portal) on asyncio and on trio.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import rgruntime
from rgruntime import MISSING, Layer
from tests.remote.conftest import LayerBackend
from tests.support import BACKENDS

SETTINGS = settings(max_examples=20, stateful_step_count=20, deadline=None)

ALL_KEYS = ("a", "b", "ab", "weather_x", "weather_y", "c:1", "with space")
KEYS = st.sampled_from(ALL_KEYS)
TAG_NAMES = ["p", "p:e", "p:e:ph", "pX", "q"]
TAGS = st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True)
SELECTORS = st.lists(st.sampled_from([*TAG_NAMES, "p:e:ph:z", "r"]), min_size=1, max_size=2)
PATTERNS = st.sampled_from(["weather_*", "a?", "[ab]", "*", "c:*", "x*"])
VALUES = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))


def _selected(tags: frozenset[str], wanted: list[str]) -> bool:
    return any(tag == each or tag.startswith(each + ":") for tag in tags for each in wanted)


class RemoteLayerMachine(RuleBasedStateMachine):
    def __init__(self, portal: anyio.from_thread.BlockingPortal, backend: LayerBackend) -> None:
        super().__init__()
        self.portal = portal
        backend_value = backend.backend()
        reader_value = backend.backend()
        self.contexts = [
            portal.wrap_async_context_manager(
                rgruntime.open_runtime({"cache_backend": backend_value})
            ),
            portal.wrap_async_context_manager(
                rgruntime.open_runtime(
                    {"cache_backend": reader_value, "layers": {"tool": {"near_cache": False}}}
                )
            ),
        ]
        writer, reader = (context.__enter__() for context in self.contexts)
        self.writer: Layer = writer.layer("tool")
        self.reader: Layer = reader.layer("tool")
        self.model: dict[str, tuple[Any, frozenset[str]]] = {}
        self.loads = itertools.count()

    def call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(functools.partial(method, *args, **kwargs))

    def teardown(self) -> None:
        for context in reversed(self.contexts):
            context.__exit__(None, None, None)

    @rule(key=KEYS, value=VALUES, tags=TAGS, nowait=st.booleans())
    def set(self, key: str, value: Any, tags: list[str], nowait: bool) -> None:
        if nowait:  # queued for the writer task: flushed before the step ends
            self.call(self._set_and_flush, key, value, tags)
        else:
            self.call(self.writer.set, key, value, tags=tags)
        self.model[key] = (value, frozenset(tags))

    async def _set_and_flush(self, key: str, value: Any, tags: list[str]) -> None:
        self.writer.set_nowait(key, value, tags=tags)
        await self.writer.link.flush()  # type: ignore[attr-defined]

    @rule(key=KEYS, tags=TAGS)
    def get_or_load(self, key: str, tags: list[str]) -> None:
        loaded = next(self.loads)

        async def loader() -> int:
            return loaded

        value = self.call(self.writer.get_or_load, key, loader, tags=tags)
        if key in self.model:
            assert value == self.model[key][0]
        else:
            assert value == loaded
            self.model[key] = (loaded, frozenset(tags))

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.call(self.writer.delete, key)
        self.model.pop(key, None)

    @rule(tags=SELECTORS)
    def invalidate_tags(self, tags: list[str]) -> None:
        self.call(self.writer.invalidate, tags=tags)
        for key in [key for key, (_, key_tags) in self.model.items() if _selected(key_tags, tags)]:
            del self.model[key]

    @rule(pattern=PATTERNS)
    def invalidate_pattern(self, pattern: str) -> None:
        self.call(self.writer.invalidate, pattern=pattern)
        for key in [key for key in self.model if fnmatch.fnmatchcase(key, pattern)]:
            del self.model[key]

    @rule()
    def clear(self) -> None:
        self.call(self.writer.clear)
        self.model.clear()

    @invariant()
    def both_runtimes_show_the_model(self) -> None:
        for layer in (self.writer, self.reader):
            for key in ALL_KEYS:
                expected = self.model.get(key, (MISSING,))[0]
                found = self.call(layer.get, key, MISSING)
                assert found == expected, f"{layer!r}: {key!r} is {found!r}, not {expected!r}"


@pytest.mark.parametrize("kind", ["memory", "redis", "redis_cluster", "memcached"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_remote_layer_against_model(
    request: pytest.FixtureRequest, kind: str, backend: str
) -> None:
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        run_state_machine_as_test(
            # A fresh prefix per example: nothing of an earlier one can leak into it.
            lambda: RemoteLayerMachine(portal, LayerBackend(kind, request)),
            settings=SETTINGS,
        )
