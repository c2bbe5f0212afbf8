"""The exceptions rgruntime raises.

Every error caused by a bad value names the field, the value and what is accepted, so that the
message alone tells the user what to change. Values are shown through :func:`describe_value`: at
most :data:`VALUE_LIMIT` characters of their repr, so a 10 MB key makes a short message.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "CapacityError",
    "ConfigError",
    "InvalidArgumentError",
    "LayerNotFoundError",
    "LoadFailedError",
    "LoadInterruptedError",
    "LoaderRecursionError",
    "RGRuntimeError",
    "RuntimeClosedError",
    "describe_value",
]

#: The most characters of a value's repr that a message shows.
VALUE_LIMIT = 200


def _limited_repr() -> reprlib.Repr:
    # reprlib slices strings and containers before calling repr on them, so the cost and the
    # size of the text stay bounded whatever the value's size (repr of a 10 MB str is 10 MB).
    limited = reprlib.Repr()
    limited.maxlevel = 3
    limited.maxstring = limited.maxother = VALUE_LIMIT
    limited.maxlong = 40
    limited.maxlist = limited.maxtuple = limited.maxset = limited.maxfrozenset = 10
    limited.maxdict = limited.maxdeque = limited.maxarray = 10
    return limited


_LIMITED_REPR = _limited_repr()


def describe_value(value: object) -> str:
    """``repr(value)`` cut to at most :data:`VALUE_LIMIT` characters, with what was left out.

    Strings and bytes are sliced before their repr is taken. An object's own ``__repr__`` still
    runs once (through :mod:`reprlib`), but its text is cut; one that raises is named by type.
    """
    if isinstance(value, str | bytes | bytearray) and len(value) > VALUE_LIMIT:
        unit = "chars" if isinstance(value, str) else "bytes"
        suffix = f"… ({len(value)} {unit})"
        # Escapes may make the repr 4x longer: cut it so that the whole stays within the limit.
        return repr(value[:VALUE_LIMIT])[: VALUE_LIMIT - len(suffix)] + suffix
    if isinstance(value, int) and value.bit_length() > 128:
        # repr of a huge int is slow, and refused past 4300 digits (sys.set_int_max_str_digits).
        return f"<int of {value.bit_length()} bits>"
    try:
        text = _LIMITED_REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        return f"<{type(value).__qualname__} object (its repr failed)>"
    return text if len(text) <= VALUE_LIMIT else f"{text[: VALUE_LIMIT - 1]}…"


class RGRuntimeError(Exception):
    """Base class of every exception rgruntime raises on its own account."""


class _FieldError(RGRuntimeError, ValueError):
    """A value given for a named field is not acceptable."""

    def __init__(self, field: str, value: Any, accepted: str) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        super().__init__(f"{field}: {describe_value(value)} is not accepted; expected {accepted}")

    def __reduce__(self) -> tuple[Any, ...]:
        # copy and pickle rebuild the error from its own arguments, not from its message.
        return type(self), (self.field, self.value, self.accepted), self.__dict__


class ConfigError(_FieldError):
    """A configuration value is unknown, malformed or out of range.

    ``field`` is the dotted path of the setting (``cache_config.max_size``), ``value`` what was
    given and ``accepted`` what would have been accepted.
    """


class InvalidArgumentError(_FieldError, TypeError):
    """An argument of a cache operation is malformed or out of range (``ttl=-1``, ``tags=[""]``).

    Also a ``TypeError``: a key of the wrong type (``get(42)``) raised a plain ``TypeError``
    before this error covered it, and code catching that keeps working.
    """


class LayerNotFoundError(RGRuntimeError, LookupError):
    """``runtime.layer(name)`` named a layer that the runtime does not have."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"no cache layer named {describe_value(name)}; the runtime has: {', '.join(known)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.name, self.known), self.__dict__


class LoaderRecursionError(RGRuntimeError, RuntimeError):
    """A loader asked, directly or through other loads, for the key it is loading.

    Waiting would deadlock (the load waits for itself), so the inner call fails instead.
    """

    def __init__(self, layer: str, key: str, chain: tuple[tuple[str, str], ...]) -> None:
        self.layer = layer
        self.key = key
        self.chain = chain
        path = " -> ".join(
            f"{layer_name}:{describe_value(k)}" for layer_name, k in (*chain, (layer, key))
        )
        super().__init__(f"loader recursion on layer {layer!r}, key {describe_value(key)}: {path}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.layer, self.key, self.chain), self.__dict__


class LoadFailedError(RGRuntimeError):
    """A loader raised an exception that could not be copied for each of the load's waiters.

    Every waiter of a failed load normally gets its own copy of the loader's exception (the
    very type the loader raised). An exception whose class cannot be rebuilt reaches each waiter
    as this error instead; the loader's exception is its ``__cause__`` (and ``error``).
    """

    def __init__(self, layer: str, key: str, error: BaseException) -> None:
        self.layer = layer
        self.key = key
        self.error = error
        super().__init__(
            f"the loader of layer {layer!r}, key {describe_value(key)} raised "
            f"{type(error).__qualname__}: {_describe_message(error)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.layer, self.key, self.error), self.__dict__


def _describe_message(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # a broken __str__ must not hide the failure being reported
        return "(its message could not be read)"
    return message if len(message) <= VALUE_LIMIT else describe_value(message)


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

    def __reduce__(self) -> tuple[Any, ...]:
        arguments = (self.layer, self.needed, self.held, self.budget, self.bound)
        return type(self), arguments, self.__dict__


class LoadInterruptedError(RGRuntimeError):
    """A loader raised a cancellation that no cancel scope of the runtime caused (on asyncio:
    it awaited a future someone else cancelled). The load failed; the layer goes on."""

    def __init__(self, layer: str, key: str) -> None:
        self.layer = layer
        self.key = key
        super().__init__(
            f"the loader of key {describe_value(key)} in cache layer {layer!r} was cancelled by "
            "something other than rgruntime (a future it awaited was cancelled)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.layer, self.key), self.__dict__
