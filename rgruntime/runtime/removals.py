"""Removal listeners: who else must know when a key leaves a layer.

Other parts of the runtime keep state about a layer's keys: the semantic index holds a vector per
key, the dependency graph knows which responses used a tool result, the event bus reports
evictions. Each registers a listener on the layer and hears about every key that leaves the entry
map, whatever the cause, at the moment it leaves, so that none of them can answer with (or keep)
a key the layer no longer holds.

A listener is a plain synchronous callable, ``listener(layer, key, reason)``. It runs inside the
layer actor's maintenance pass (or in the caller's task for ``delete``), which must never suspend,
so it must be quick and must not await: a listener that has asynchronous work to do queues it. An
exception in a listener is logged and counted, never raised into the actor: one faulty listener
must not stop the layer that every other listener depends on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeAlias

__all__ = ["RemovalListener", "RemovalListeners", "RemovalReason"]

logger = logging.getLogger("rgruntime.runtime")

#: Why a key left its layer.
#:
#: - ``expired``: its deadline passed;
#: - ``evicted``: the layer was over its bounds and the policy chose it;
#: - ``invalidated``: an ``invalidate`` by key, pattern or tag selected it;
#: - ``cleared``: ``clear()`` removed everything;
#: - ``deleted``: ``delete(key)``;
#: - ``trimmed``: the owner of a group of keys dropped the oldest to keep the group within its
#:   own bound (``delete_nowait(key, reason="trimmed")``: an agent's ``max_entries`` of answers or
#:   memory lookups). Capacity pressure, like ``evicted``: the value did not change;
#: - ``replaced``: a write put a new value under the same key (the key stays; what it held went);
#: - ``dropped``: a remote layer forgot its near copy while the store's entry lives on unchanged
#:   (after its invalidation channel was interrupted, it cannot know which copies are current).
#:
#: Known changes (``invalidated``, ``cleared``, ``deleted``, ``replaced``) take what was computed
#: from the value along (the dependency graph); ``evicted``, ``trimmed`` and, by default,
#: ``expired`` do not.
RemovalReason: TypeAlias = Literal[
    "expired", "evicted", "invalidated", "cleared", "deleted", "trimmed", "replaced", "dropped"
]

#: ``listener(layer_name, key, reason)``: synchronous, quick, never suspends.
RemovalListener: TypeAlias = Callable[[str, str, RemovalReason], None]


class RemovalListeners:
    """The listeners of one layer, and how many times one of them failed."""

    __slots__ = ("_layer", "_listeners", "failures")

    def __init__(self, layer: str) -> None:
        self._layer = layer
        self._listeners: list[RemovalListener] = []
        self.failures = 0

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def __len__(self) -> int:
        return len(self._listeners)

    def add(self, listener: RemovalListener) -> Callable[[], None]:
        """Register ``listener``; return a function that unregisters it (idempotent)."""
        if not callable(listener):
            raise TypeError(
                f"removal listener: expected a callable (layer, key, reason), got {listener!r}"
            )
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def notify(self, key: str, reason: RemovalReason) -> None:
        """Tell every listener that ``key`` left for ``reason``."""
        # A copy: a listener may unregister itself (or another) while being told.
        for listener in tuple(self._listeners):
            try:
                listener(self._layer, key, reason)
            except Exception:
                self.failures += 1
                logger.exception(
                    "removal listener %r failed on layer %r, key %r (%s)",
                    listener,
                    self._layer,
                    key,
                    reason,
                )
