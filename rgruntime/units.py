"""Parsing of byte sizes ("100MB") and durations ("5m") as the caching guide writes them.

Sizes follow the standards: decimal SI units (``KB`` = 1,000 bytes, ``MB`` = 1,000,000) and binary
IEC units (``KiB`` = 1,024 bytes, ``MiB`` = 1,048,576). Unit letters are case-insensitive, so
``"100mb"`` is ``"100MB"``. A bare number is bytes.

Durations are seconds: a number, or a string with a unit (``ms``, ``s``, ``m``, ``h``, ``d``,
``w``).
"""

from __future__ import annotations

import math
import re
from typing import Final

from rgruntime.errors import ConfigError, _FieldError

__all__ = ["SIZE_UNITS", "parse_duration", "parse_size"]

SIZE_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS: Final[dict[str, float]] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER_WITH_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")

SIZE_ACCEPTED: Final = (
    "a positive number of bytes, or a string such as '100MB', '512KB', '1.5GB' or '64MiB' "
    "(units B, KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB = powers of 1024)"
)
DURATION_ACCEPTED: Final = (
    "a positive number of seconds, or a string such as '500ms', '30s', '5m', '1h', '1d' or '1w'"
)


def parse_size(
    value: object, *, field: str = "size", error: type[_FieldError] = ConfigError
) -> int:
    """Return ``value`` as a whole number of bytes (at least 1).

    >>> parse_size("100MB"), parse_size("64MiB"), parse_size(4096)
    (100000000, 67108864, 4096)
    """
    if isinstance(value, bool):
        raise error(field, value, SIZE_ACCEPTED)
    if isinstance(value, int | float):
        number, multiplier = float(value), 1
    elif isinstance(value, str) and (match := _NUMBER_WITH_UNIT.match(value)):
        unit = match.group(2).lower() or "b"
        if unit not in SIZE_UNITS:
            raise error(field, value, SIZE_ACCEPTED)
        number, multiplier = float(match.group(1)), SIZE_UNITS[unit]
    else:
        raise error(field, value, SIZE_ACCEPTED)
    size = number * multiplier
    if not math.isfinite(size) or size < 1:
        raise error(field, value, SIZE_ACCEPTED)
    return round(size)


def parse_duration(
    value: object, *, field: str = "duration", error: type[_FieldError] = ConfigError
) -> float:
    """Return ``value`` as a positive number of seconds.

    >>> parse_duration(300), parse_duration("5m"), parse_duration("1.5h")
    (300.0, 300.0, 5400.0)
    """
    if isinstance(value, bool):
        raise error(field, value, DURATION_ACCEPTED)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _NUMBER_WITH_UNIT.match(value)):
        unit = match.group(2).lower() or "s"
        if unit not in _DURATION_UNITS:
            raise error(field, value, DURATION_ACCEPTED)
        seconds = float(match.group(1)) * _DURATION_UNITS[unit]
    else:
        raise error(field, value, DURATION_ACCEPTED)
    if not math.isfinite(seconds) or seconds <= 0:
        raise error(field, value, DURATION_ACCEPTED)
    return seconds
