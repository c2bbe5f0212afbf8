"""Checks of the client's arguments: a bad one raises :class:`~rgruntime.InvalidArgumentError`
naming the field, before anything is stored or run.

Messages show at most :data:`VALUE_LIMIT` characters of a value (a 10 MB goal makes a short
message): :func:`shown`.
"""

from __future__ import annotations

import reprlib
from typing import Final

from rgruntime.errors import InvalidArgumentError

__all__ = ["VALUE_LIMIT", "check_id", "check_text", "shown"]

#: The most characters of a value's repr a message shows.
VALUE_LIMIT: Final = 200

_REPR = reprlib.Repr()
_REPR.maxstring = VALUE_LIMIT - 10
_REPR.maxother = VALUE_LIMIT - 10


def shown(value: object) -> str:
    """``repr(value)``, cut to at most :data:`VALUE_LIMIT` characters."""
    text = _REPR.repr(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."


def check_id(field: str, value: object, example: str) -> str:
    """An id argument: a non-empty string (``example`` shows one)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(field, value, f"an id such as {example!r}")
    return value


def check_text(field: str, value: object) -> str:
    """A text argument: a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(field, value, "a non-empty string")
    return value
