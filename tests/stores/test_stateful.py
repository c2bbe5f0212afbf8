"""A Hypothesis state machine drives each kind of store against a plain Python model.

The store runs in an event loop in another thread (an anyio blocking portal, on asyncio and on
trio); each rule is one portal call, applied to the model too, and after every step the whole
key space is read back and compared. TTLs are left to test_contract.py: here time must not matter.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from rgruntime.stores import EXACT_TAGS, RemoteStore
from tests.stores.conftest import StoreFactory
from tests.support import BACKENDS

SETTINGS = settings(max_examples=25, stateful_step_count=25, deadline=None)

ALL_KEYS = ("a", "b", "ab", "c:1", "with space", "brace{x}")
KEYS = st.sampled_from(ALL_KEYS)
TAG_NAMES = ["p", "p:e", "p:e:ph", "pX", "p-x", "q"]
TAGS = st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True)
SELECTORS = st.lists(st.sampled_from([*TAG_NAMES, "p:e:ph:z", "r"]), min_size=1, max_size=2)


def _selected(tags: frozenset[str], wanted: list[str]) -> bool:
    return any(tag == each or tag.startswith(each + ":") for tag in tags for each in wanted)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self, portal: anyio.from_thread.BlockingPortal, store: Any) -> None:
        super().__init__()
        self.portal = portal
        self.context = portal.wrap_async_context_manager(store)
        self.store: RemoteStore = self.context.__enter__()
        self.entries: dict[str, tuple[bytes, frozenset[str]]] = {}
        self.leases: dict[str, str] = {}
        self.values = itertools.count()

    def call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(functools.partial(method, *args, **kwargs))

    def teardown(self) -> None:
        try:
            self.call(self.store.clear)
        finally:
            self.context.__exit__(None, None, None)

    @rule(key=KEYS, tags=TAGS)
    def set(self, key: str, tags: list[str]) -> None:
        value = str(next(self.values)).encode()
        self.call(self.store.set, key, value, tags=tags)
        self.entries[key] = (value, frozenset(tags))

    @rule(keys=st.lists(KEYS, max_size=4))
    def delete(self, keys: list[str]) -> None:
        removed = self.call(self.store.delete, keys)
        assert removed == len(set(keys) & set(self.entries))
        for key in keys:
            self.entries.pop(key, None)

    @rule(tags=SELECTORS)
    def invalidate_tags(self, tags: list[str]) -> None:
        removed = self.call(self.store.invalidate_tags, tags)
        expected = {key for key, (_, key_tags) in self.entries.items() if _selected(key_tags, tags)}
        if EXACT_TAGS in self.store.capabilities:
            assert removed is not None
            assert sorted(removed) == sorted(expected)
        else:
            assert removed is None
        for key in expected:
            del self.entries[key]

    @rule()
    def clear(self) -> None:
        self.call(self.store.clear)
        self.entries.clear()  # leases survive a clear()

    @rule(key=KEYS)
    def acquire_lease(self, key: str) -> None:
        token = self.call(self.store.acquire_lease, key, 60)
        if key in self.leases:
            assert token is None
        else:
            assert token is not None
            self.leases[key] = token

    @rule(key=KEYS, right_token=st.booleans())
    def release_lease(self, key: str, right_token: bool) -> None:
        token = self.leases.get(key, "no-such-token") if right_token else "wrong"
        released = self.call(self.store.release_lease, key, token)
        assert released == (right_token and key in self.leases)
        if released:
            del self.leases[key]

    @invariant()
    def store_matches_model(self) -> None:
        found = self.call(self.store.get_many, list(ALL_KEYS))
        assert found == [self.entries.get(key, (None,))[0] for key in ALL_KEYS]
        for key in ALL_KEYS:
            assert self.call(self.store.lease_active, key) == (key in self.leases)


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_against_model(store_factory: StoreFactory, backend: str) -> None:
    examples = itertools.count()
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        run_state_machine_as_test(
            # A fresh prefix per example: nothing of an earlier one can leak into it.
            lambda: StoreMachine(
                portal, store_factory.make(prefix=f"{store_factory.prefix}{next(examples)}:")
            ),
            settings=SETTINGS,
        )
