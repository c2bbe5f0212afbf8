"""The default estimate of an entry's weight in bytes, for ``max_size`` budgets.

``estimate_size(value)`` is ``sys.getsizeof`` of the value plus, for the containers an LLM
runtime caches (dicts, lists, tuples, sets), the sizes of what they hold, down to four levels and
counting a shared object once. Objects with ``__dict__`` or ``__slots__`` count their attributes
the same way. It is an estimate of the in-memory footprint, cheap for the common case (a string
costs one ``sys.getsizeof`` call); pass ``size=`` to a write when you know better (for example
the length of a serialized payload).
"""

from __future__ import annotations

import sys
from typing import Any, Final

__all__ = ["estimate_size"]

_MAX_DEPTH: Final = 4
_FLAT: Final = (str, bytes, bytearray, int, float, bool, type(None), memoryview, complex)


def estimate_size(value: Any) -> int:
    """Approximate bytes held by ``value`` (see the module documentation)."""
    if isinstance(value, _FLAT):
        return sys.getsizeof(value)
    return _deep_size(value, set(), _MAX_DEPTH)


def _deep_size(value: Any, seen: set[int], depth: int) -> int:
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if depth == 0 or isinstance(value, _FLAT):
        return size
    depth -= 1
    if isinstance(value, dict):
        for key, item in value.items():
            size += _deep_size(key, seen, depth) + _deep_size(item, seen, depth)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            size += _deep_size(item, seen, depth)
    else:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            size += _deep_size(attributes, seen, depth)
        for slot in getattr(type(value), "__slots__", ()):
            if isinstance(slot, str) and hasattr(value, slot):
                size += _deep_size(getattr(value, slot), seen, depth)
    return size
