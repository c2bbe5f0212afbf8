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


class CapacityError(RGRuntimeError, ValueError):
    """A write to a layer whose entries are never evicted for space (``evictable=False``, the
    ``session`` layer) does not fit in its byte budget; nothing was stored.

    ``needed`` is the entry's size in bytes, ``budget`` the layer's ``max_size`` in bytes.
    """

    def __init__(self, layer: str, needed: int, budget: int | None) -> None:
        self.layer = layer
        self.needed = needed
        self.budget = budget
        super().__init__(
            f"layer {layer!r} cannot store an entry of {needed:,} bytes: its entries are never "
            f"evicted for space and its budget ({budget if budget is None else f'{budget:,}'} "
            "bytes) is full; raise its max_size, or remove entries (delete, invalidate, a TTL)"
        )


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
