"""The exceptions rgruntime raises.

Every error caused by a bad value names the field, the value and what is accepted, so that the
message alone tells the user what to change.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CapacityError",
    "ConfigError",
    "InvalidArgumentError",
    "LayerNotFoundError",
    "LoadInterruptedError",
    "LoaderRecursionError",
    "RGRuntimeError",
    "RuntimeClosedError",
]


class RGRuntimeError(Exception):
    """Base class of every exception rgruntime raises on its own account."""


class _FieldError(RGRuntimeError, ValueError):
    """A value given for a named field is not acceptable."""

    def __init__(self, field: str, value: Any, accepted: str) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        super().__init__(f"{field}: {value!r} is not accepted; expected {accepted}")


class ConfigError(_FieldError):
    """A configuration value is unknown, malformed or out of range.

    ``field`` is the dotted path of the setting (``cache_config.max_size``), ``value`` what was
    given and ``accepted`` what would have been accepted.
    """


class InvalidArgumentError(_FieldError):
    """An argument of a cache operation is malformed or out of range (``ttl=-1``, ``tags=[""]``)."""


class LayerNotFoundError(RGRuntimeError, LookupError):
    """``runtime.layer(name)`` named a layer that the runtime does not have."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"no cache layer named {name!r}; the runtime has: {', '.join(known)}")


class LoaderRecursionError(RGRuntimeError, RuntimeError):
    """A loader asked, directly or through other loads, for the key it is loading.

    Waiting would deadlock (the load waits for itself), so the inner call fails instead.
    """

    def __init__(self, layer: str, key: str, chain: tuple[tuple[str, str], ...]) -> None:
        self.layer = layer
        self.key = key
        self.chain = chain
        path = " -> ".join(f"{layer_name}:{k!r}" for layer_name, k in (*chain, (layer, key)))
        super().__init__(f"loader recursion on layer {layer!r}, key {key!r}: {path}")


class RuntimeClosedError(RGRuntimeError, RuntimeError):
    """The runtime this layer belongs to is not open (it was closed, or closed during a load)."""


class CapacityError(RGRuntimeError):
    """A write to a layer that never evicts for space (``evictable=False``: the ``session``
    layer) does not fit in its budget. Nothing was stored and nothing existing was removed."""

    def __init__(self, layer: str, needed: int, held: int, budget: int, bound: str) -> None:
        self.layer = layer
        self.needed = needed
        self.held = held
        self.budget = budget
        self.bound = bound
        unit = "bytes" if bound == "max_size" else "entries"
        super().__init__(
            f"cache layer {layer!r} never evicts for space and is full: it holds {held} of its "
            f"{bound} of {budget} {unit}, and this write needs {needed} more; raise the "
            f"layer's {bound} (or the runtime's max_size) or remove entries"
        )


class LoadInterruptedError(RGRuntimeError):
    """A loader raised a cancellation that no cancel scope of the runtime caused (on asyncio:
    it awaited a future someone else cancelled). The load failed; the layer goes on."""

    def __init__(self, layer: str, key: str) -> None:
        self.layer = layer
        self.key = key
        super().__init__(
            f"the loader of key {key!r} in cache layer {layer!r} was cancelled by something "
            "other than rgruntime (a future it awaited was cancelled)"
        )
