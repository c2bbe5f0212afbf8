"""A histogram of non-negative values in a fixed number of geometric bins.

Reuse distances and re-request times span six orders of magnitude; a bin per value would grow
with the traffic. Values below :data:`EXACT` get a bin each; above, every doubling is cut in
:data:`PER_DOUBLING` bins (a bin's width is under 1/32 of its value, so reading a quantile or a
curve from the bins is off by at most that much). Memory is fixed by the largest value that can
arrive: at most ``EXACT + PER_DOUBLING * 64`` bins for 64-bit values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

__all__ = ["EXACT", "PER_DOUBLING", "LogHistogram"]

#: Values below this get a bin each.
EXACT: Final = 64
#: Bins per doubling above :data:`EXACT`.
PER_DOUBLING: Final = 32
_EXACT_BITS: Final = 6  # log2(EXACT)


def bin_of(value: float) -> int:
    """The bin index of ``value`` (>= 0)."""
    if value < EXACT:
        return int(value)
    exponent = math.floor(math.log2(value))
    fraction = value / (1 << exponent) - 1.0  # in [0, 1)
    return EXACT + (exponent - _EXACT_BITS) * PER_DOUBLING + int(fraction * PER_DOUBLING)


def bin_bounds(index: int) -> tuple[float, float]:
    """The values ``[low, high)`` that fall in bin ``index``."""
    if index < EXACT:
        return float(index), float(index + 1)
    exponent, step = divmod(index - EXACT, PER_DOUBLING)
    base = float(1 << (exponent + _EXACT_BITS))
    return base * (1 + step / PER_DOUBLING), base * (1 + (step + 1) / PER_DOUBLING)


class LogHistogram:
    """Weights of values in geometric bins (see the module documentation)."""

    __slots__ = ("_bins", "total")

    def __init__(self) -> None:
        self._bins: dict[int, float] = {}
        self.total = 0.0

    def __len__(self) -> int:
        """How many bins hold weight (what the histogram's memory grows with)."""
        return len(self._bins)

    def add(self, value: float, weight: float = 1.0) -> None:
        index = bin_of(value)
        self._bins[index] = self._bins.get(index, 0.0) + weight
        self.total += weight

    def items(self) -> Iterator[tuple[float, float, float]]:
        """``(low, high, weight)`` per bin holding weight, in increasing order."""
        for index in sorted(self._bins):
            low, high = bin_bounds(index)
            yield low, high, self._bins[index]

    def weight_below(self, value: float) -> float:
        """The weight of values below ``value`` (spread evenly across a bin it cuts)."""
        below = 0.0
        for low, high, weight in self.items():
            if high <= value:
                below += weight
            elif low < value:
                below += weight * (value - low) / (high - low)
            else:
                break
        return below

    def quantile(self, share: float) -> float | None:
        """The value under which ``share`` (0-1) of the weight lies; None when empty."""
        if self.total <= 0:
            return None
        wanted = share * self.total
        seen = 0.0
        for low, high, weight in self.items():
            if seen + weight >= wanted:
                return low + (high - low) * (wanted - seen) / weight if weight else low
            seen += weight
        return None
