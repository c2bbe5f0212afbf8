"""The exceptions of remote stores.

A remote call that cannot reach its server, or does not answer in time, raises
:class:`StoreUnavailableError` whatever the client library raised, so that a layer can fall back
(serve a miss, skip a write) on one exception type.
"""

from __future__ import annotations

from rgruntime.errors import RGRuntimeError

__all__ = [
    "StoreError",
    "StoreUnavailableError",
    "UndecodableEntryError",
    "UnsupportedOperationError",
]


class StoreError(RGRuntimeError):
    """Base class of the errors a remote store raises."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The server did not answer: refused, reset, timed out, or the store is closed.

    ``operation`` is the store method that failed (``"get"``); ``store`` describes the store
    (``"redis 127.0.0.1:6379 prefix 'rg:'"``). The cause is chained (``__cause__``).
    """

    def __init__(self, store: str, operation: str, reason: str) -> None:
        self.store = store
        self.operation = operation
        self.reason = reason
        super().__init__(f"{store}: {operation} failed: {reason}")


class UnsupportedOperationError(StoreError, NotImplementedError):
    """The store cannot do this (Memcached has no key scan and no invalidation channel)."""

    def __init__(self, store: str, operation: str, alternative: str) -> None:
        self.store = store
        self.operation = operation
        self.alternative = alternative
        super().__init__(f"{store} does not support {operation}: {alternative}")


class UndecodableEntryError(StoreError):
    """A stored payload is not an envelope this process can trust: count it as a miss.

    ``reason`` is one of ``"corrupt"`` (not msgpack, truncated, trailing bytes), ``"foreign"``
    (msgpack, but not an rgruntime envelope), ``"version"`` (an envelope format this code does not
    know), ``"unsigned"`` (a pickled value whose signature is missing or wrong, or no secret to
    check it with) and ``"codec"`` (a value type with no registered codec here, or a codec that
    rejected its data).
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"undecodable entry ({reason}): {detail}")
