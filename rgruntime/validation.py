"""Field validators shared by every configuration parser.

Each takes the value and the dotted field name and returns the normalized value, or raises
:class:`~rgruntime.ConfigError` naming the field, the value and what is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rgruntime.errors import ConfigError
from rgruntime.units import parse_duration, parse_size

__all__ = [
    "boolean",
    "check_known_keys",
    "optional",
    "optional_count",
    "optional_duration",
    "optional_size",
    "positive_int",
    "similarity",
]

T = TypeVar("T")


def boolean(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "True or False")
    return value


def positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "a positive whole number")
    return value


def similarity(value: object, field: str) -> float:
    """A cosine-similarity threshold: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(field, value, "a cosine similarity between 0 and 1, such as 0.92")
    return float(value)


def optional(parse: Callable[[object, str], T]) -> Callable[[object, str], T | None]:
    """``parse``, letting ``None`` through."""

    def parse_optional(value: object, field: str) -> T | None:
        return None if value is None else parse(value, field)

    return parse_optional


optional_duration = optional(lambda value, field: parse_duration(value, field=field))
optional_size = optional(lambda value, field: parse_size(value, field=field))
optional_count = optional(positive_int)


def check_known_keys(
    options: object, known: Mapping[str, Any] | tuple[str, ...], where: str
) -> Mapping[str, Any]:
    """``options`` as a mapping whose keys are all in ``known``."""
    if not isinstance(options, Mapping):
        raise ConfigError(where, options, "a dict of settings")
    for key, value in options.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}", value, f"a known setting: {', '.join(known)}")
    return options
