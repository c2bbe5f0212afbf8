"""Checks of the client's arguments: a bad one raises :class:`~rgruntime.InvalidArgumentError`
naming the field, before anything is stored or run.

Messages show at most :data:`~rgruntime.errors.VALUE_LIMIT` characters of a value (a 10 MB goal
makes a short message): :func:`shown`, which is the errors' own value cutter.
"""

from __future__ import annotations

from rgruntime.errors import VALUE_LIMIT, InvalidArgumentError
from rgruntime.errors import describe_value as shown

__all__ = ["VALUE_LIMIT", "check_id", "check_text", "shown"]


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
