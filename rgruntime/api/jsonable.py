"""Cached values and result records as JSON: whatever a layer holds, the API can show it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["to_json"]

_MAX_DEPTH = 32


def to_json(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind
    """``value`` as JSON data: records through their ``as_dict()`` (or their fields), floats
    that JSON cannot carry as None, anything else unknown as its ``repr``."""
    if depth > _MAX_DEPTH:
        return repr(value)[:200]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict) and not isinstance(value, type):
        return to_json(as_dict(), depth + 1)
    if attrs.has(type(value)):
        return to_json(attrs.asdict(value, recurse=False), depth + 1)
    if isinstance(value, Mapping):
        return {str(key): to_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item, depth + 1) for item in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return repr(value)
