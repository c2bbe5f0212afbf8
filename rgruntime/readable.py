"""Numbers a person reads: printed the way they are meant, computed with as floats.

A float's own ``str`` shows binary noise (``3.4649999999999995e-05``, ``66.66666666666667``).
These floats print a fixed number of decimals with ``str()`` and an empty format; ``repr``,
arithmetic and explicit formats (``f"{x:.3f}"``) are a float's. Used by the client's figures
and the operations' metrics alike (so this module sits below both).
"""

from __future__ import annotations

__all__ = ["USD", "Percent"]


class USD(float):
    """Dollars: ``str`` shows six decimals (a millionth of a dollar: token prices' scale)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{float(self):.6f}"


class Percent(float):
    """A percentage (0-100): ``str`` shows one decimal."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{float(self):.1f}"
