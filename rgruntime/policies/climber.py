"""How the admission window's share of the capacity adapts.

Caffeine adapts W-TinyLFU's window by hill climbing on the hit rate: every sample period it
compares the period's hit rate with the previous one and keeps going or turns round. That signal
mixes two things: the effect of the last move, and the workload's own drift from one period to
the next. On ``cache2k_orm_busy`` the hit rate of consecutive periods (7,630 requests each at 1%)
swings between 41% and 99% on its own, so the climber wandered and missed LRU by 3.2 points.

:class:`GhostClimber` measures the effect directly instead, in the same period: two ghost lists
remember the keys that recently left, one for keys the admission filter turned away from the
window, one for keys evicted from the main area. A returning key found near the front of a ghost
(among the last ``depth`` x capacity that left that way) would have been a hit had that side been
that much larger. Each period the share moves towards the side whose ghosts returned more, by a
step proportional to how one-sided and how plentiful the evidence is (see :data:`PRIOR`). It is
still hill climbing, on a gradient measured rather than inferred, and it needs no clock and no
comparison across periods.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BOOST",
    "DECAY",
    "DEPTH",
    "HIGHEST",
    "LEAP",
    "LEAP_MAX",
    "LEAP_NOISE",
    "PRIOR",
    "SHRINK",
    "STEP",
    "GhostClimber",
]

#: Largest move of the window share per period (a fraction of the capacity).
STEP: Final = 0.05
#: How far back in a ghost a return counts as evidence (a fraction of the resident entries): as
#: far as one step moves the boundary, so the evidence is the gain of that very move. At 0.2 (four
#: steps deep) the window ghost kept outvoting main on ``arc_oltp`` at 1%: the window climbed to
#: 100% (LRU, 55.5% misses) where a fixed 30% window misses 53.4%.
DEPTH: Final = 0.05
#: Returns that count as no evidence, per entry of ghost depth: a period's move is scaled by
#: evidence / (evidence + PRIOR x depth). A handful of returns (Poisson noise of about their square
#: root) then moves the share little, many move it a full step (on ``orm_busy`` at 1% periods
#: with 0 to 5 returns are common, and each moved the share a full step before).
PRIOR: Final = 0.3
#: The first moves are this many times :data:`STEP`, and the multiple halves (:data:`DECAY`) each
#: time the direction turns, down to one: Caffeine's idea of large steps while the climb is new,
#: small ones once it oscillates round its goal. A window that starts small (5%) pays for every
#: period it spends too small on a recency-driven trace: all of ``orm_busy``'s gap to LRU at 1%
#: was made while its window climbed. Measured on the twelve cells of ``benchmarks.eviction``
#: (six traces at 1% and 10%): the worst gap to the best of the five reference policies went
#: from +0.47 to +0.34, and to LRU from +0.11 to +0.08; at four times the first moves overshoot
#: on ``arc_oltp`` at 1% (+0.37), at two ``2_pools`` at 10% ends above LRU.
BOOST: Final = 3.0
DECAY: Final = 0.5
#: Evidence far beyond its noise moves further: when one ghost returned more than ``LEAP`` x depth
#: more keys than the other, the move is multiplied by that difference / depth (at most
#: :data:`LEAP_MAX`). ``orm_busy`` at 1% (38 deep) has periods of 148 and 463 window returns
#: against none, which one (boosted) step per period took 52 periods to act on; the mixed
#: evidence of ``arc_oltp`` and ``scarab_recs`` differs by under 1.5 x depth (at 1 x, the first
#: period of ``arc_oltp`` at 1% leaps and it ends 0.17 points worse). With it ``orm_busy`` at 1%
#: went from 0.08 to 0.005 points above LRU; the other eleven cells did not change.
LEAP: Final = 2.0
LEAP_MAX: Final = 8.0
#: ... and only when that difference is also this many times its Poisson noise (the square root of
#: the returns): in a small cache the depth is a handful of entries (7 for ``web12`` at 1%), and
#: a first period of 22 returns against 3 leapt, so that a live layer (hits in a slightly
#: different order, string keys hashed with another seed) and the replay ended up to 0.36
#: points apart, where the issue allows 0.3. ``orm_busy``'s bursts are 12 to 21 times their noise.
LEAP_NOISE: Final = 5.0
#: The window's largest share. At 100% main is empty, its ghost hears nothing, and the window can
#: never shrink again: a workload that turns from recency to frequency keeps LRU for good. A
#: main of 3% keeps the evidence coming, and keeps the most frequent keys through a recency
#: burst: ``orm_busy`` at 1% with a fixed window of 97% misses 22.93%, LRU 22.97%. Measured: every
#: one of the twelve cells at or below LRU (``orm_busy`` 1% from +0.005 to -0.012), the
#: frequency-then-recency workloads 0.8 points better (tuning and held out), the others within
#: 0.1.
HIGHEST: Final = 0.97
#: Shrinking the window moves at this fraction of the speed of growing it. A window too small for
#: a recency-driven workload costs more than one too large for a frequency-driven one (which the
#: admission filter still protects), and the evidence for main comes in bursts.
SHRINK: Final = 0.5


class GhostClimber:
    """Moves the window share towards the side whose recently departed keys came back more."""

    __slots__ = ("_direction", "_high", "_low", "_scale", "_step", "share")

    def __init__(
        self, share: float, *, step: float = STEP, low: float = 0.0, high: float = HIGHEST
    ) -> None:
        self.share = share
        self._step = step
        self._low = low
        self._high = high
        self._scale = BOOST  # the steps' multiple now (see BOOST)
        self._direction = 0  # the sign of the last move (0: none yet)

    def climb(self, window_returns: int, main_returns: int, depth: float = 1.0) -> float:
        """The new share after a period in which the two ghosts saw these returns, counted
        ``depth`` departures deep."""
        evidence = window_returns + main_returns
        if evidence:
            difference = window_returns - main_returns
            move = self._step * self._scale * difference / (evidence + PRIOR * depth)
            direction = (difference > 0) - (difference < 0)
            if direction and direction != self._direction:
                if self._direction:  # a turn (this move still at full size): smaller from now on
                    self._scale = max(1.0, self._scale * DECAY)
                self._direction = direction
            if (
                depth > 0
                and abs(difference) > LEAP * depth
                and difference * difference > LEAP_NOISE * LEAP_NOISE * evidence
            ):  # see LEAP
                move *= min(abs(difference) / depth, LEAP_MAX)
            if move < 0:
                move *= SHRINK
            self.share = min(self._high, max(self._low, self.share + move))
        return self.share
