"""Numbers of the operations records that print the way a person reads them."""

from __future__ import annotations

__all__ = ["Bytes", "Seconds"]

_UNITS = (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000))


class Bytes(int):
    """A byte count whose ``str`` is a size the configuration accepts back (``"12.5MB"``)."""

    __slots__ = ()

    def __str__(self) -> str:
        value = int(self)
        for unit, scale in _UNITS:
            if abs(value) >= scale:
                return f"{value / scale:.1f}{unit}".replace(".0" + unit, unit)
        return f"{value}B"


class Seconds(float):
    """Seconds; ``str`` shows a whole number of seconds (``"3600s"``)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{round(float(self))}s"
