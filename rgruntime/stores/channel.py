"""The wire form of :class:`~rgruntime.stores.Invalidation` messages (msgpack)."""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]

from rgruntime.stores.base import Invalidation

__all__ = ["decode_invalidation", "encode_invalidation"]

_MAGIC: Final = "rgi1"


def encode_invalidation(message: Invalidation) -> bytes:
    frame = [_MAGIC, message.origin, sorted(message.keys), sorted(message.tags), message.clear]
    return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]


def decode_invalidation(data: bytes) -> Invalidation | None:
    """The message in ``data``, or ``None`` for anything else published on the channel."""
    try:
        frame: Any = msgpack.unpackb(data, raw=False)
    except Exception:  # a foreign publisher: not ours to interpret
        return None
    if not (isinstance(frame, list) and len(frame) == 5 and frame[0] == _MAGIC):
        return None
    _, origin, keys, tags, clear = frame
    if not (
        isinstance(origin, str)
        and isinstance(keys, list)
        and isinstance(tags, list)
        and all(isinstance(item, str) for item in (*keys, *tags))
        and isinstance(clear, bool)
    ):
        return None
    return Invalidation(keys=frozenset(keys), tags=frozenset(tags), clear=clear, origin=origin)
