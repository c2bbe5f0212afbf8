"""A count-min frequency sketch with saturating counters and periodic halving (TinyLFU's filter).

Each key owns one counter in each of two rows; its estimate is the smaller of the two (keys that
share a counter can only inflate it). Counters saturate at 15, as TinyLFU's 4-bit counters do:
an admission decision only needs "more popular than the victim", not how much more, and a low
ceiling keeps halving effective.

Two rows rather than Caffeine's four: on the six traces of ``benchmarks.eviction`` the miss ratios
of ``lfu`` with two and four rows differ by at most 0.3 points either way (rows are four times
the capacity wide, so collisions are rare), while each row costs Python about 100 ns on every miss.
One byte per counter (a ``bytearray``) rather than packed nibbles, for the same reason.

Aging: :meth:`FrequencySketch.halve` divides every counter by two in one C-level
``bytearray.translate``; the policy calls it every sample period, so old popularity fades.

Keys are located once: :meth:`FrequencySketch.slots` returns the two counter offsets, the policy
keeps them on its record of the key, and reads and updates ``table`` directly on its hot paths
(a method call would cost as much as the work).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Final

__all__ = ["MAX_COUNT", "FrequencySketch"]

#: The counters' ceiling (TinyLFU's 4-bit counters).
MAX_COUNT: Final = 15

#: ``bytes.translate`` table that halves every counter at once.
_HALVE: Final = bytes(value >> 1 for value in range(256))
_MIN_WIDTH: Final = 16
#: Widest row: a row index is a 32-bit half of the mixed hash.
_MAX_WIDTH: Final = 1 << 32


class FrequencySketch:
    """Approximate use counts of recently seen keys, in ``2 * width`` bytes.

    ``entries`` is how many keys the cache holds; rows are ``width_factor`` times that, rounded
    up to a power of two.
    """

    __slots__ = ("modulus_a", "modulus_b", "table", "width")

    def __init__(self, entries: int, width_factor: int = 4) -> None:
        width = _MIN_WIDTH
        while width < entries * width_factor and width < _MAX_WIDTH:
            width *= 2
        self.width = width
        # Row indexes are the key's hash modulo two different primes: hash() of an int is the
        # int itself and trace keys are structured (consecutive, or packed fields), which a
        # power-of-two mask would keep; a prime scrambles them, and two keys share both
        # counters only if their hashes differ by a multiple of the primes' product.
        self.modulus_a = _prime_at_most(width)
        self.modulus_b = _prime_at_most(self.modulus_a - 1)
        self.table = bytearray(2 * width)

    def slots(self, key: Hashable) -> tuple[int, int]:
        """The table offsets of ``key``'s two counters (valid until the sketch is rebuilt)."""
        code = hash(key)
        return code % self.modulus_a, self.width + code % self.modulus_b

    def estimate(self, slots: tuple[int, int]) -> int:
        """How often the key at ``slots`` was counted (an over-estimate at worst)."""
        first, second = self.table[slots[0]], self.table[slots[1]]
        return first if first < second else second

    def add(self, slots: tuple[int, int], count: int) -> None:
        """Count ``count`` more uses of the key at ``slots`` (saturating)."""
        table = self.table
        for slot in slots:
            value = table[slot] + count
            table[slot] = value if value < MAX_COUNT else MAX_COUNT

    def halve(self) -> None:
        """Age every count: halve it (rounding down).

        In place: a policy keeps a reference to ``table`` for its hot paths, which a new object
        would leave stale.
        """
        table = self.table
        table[:] = table.translate(_HALVE)


def _prime_at_most(number: int) -> int:
    """The largest prime not above ``number`` (at least 2)."""
    candidate = max(2, number)
    while candidate > 2 and not _is_prime(candidate):
        candidate -= 1
    return candidate


def _is_prime(number: int) -> bool:
    return all(number % divisor for divisor in range(2, math.isqrt(number) + 1))
