"""Moving the runtime's byte budget between layers, toward where it earns the most.

Each layer keeps a ghost list of the keys it evicted recently. A load of a key that is still on
the ghost list is a miss that more space would have avoided; its measured load time is what that
space would have earned. Per rebalancing period, a layer's **marginal value** is those seconds
divided by the bytes its ghost list covers: seconds saved per byte of extra budget. The supervisor
then moves one step of budget from the layer where a byte is worth least to the one where it is
worth most, never below a layer's minimum share and never above the runtime's total.

This module is the pure decision; the supervisor measures and applies it.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["BudgetReport", "rebalance"]


@attrs.frozen(kw_only=True)
class BudgetReport:
    """One layer's period, as the supervisor reads it."""

    budget: int
    minimum: int
    ghost_value: float  # seconds of loads that a larger budget would have saved
    ghost_bytes: int  # bytes the ghost list covers

    @property
    def marginal_value(self) -> float:
        """Seconds saved per extra byte (0 when the ghost list caught nothing)."""
        return self.ghost_value / self.ghost_bytes if self.ghost_bytes else 0.0


def rebalance(reports: Mapping[str, BudgetReport], step: int) -> dict[str, int]:
    """New budgets: ``step`` bytes (at most) from the least to the most valuable layer.

    Budgets are unchanged when no layer gained anything from its ghost list, when the best and
    the worst layer are worth the same, or when the worst has nothing above its minimum to give.
    The total never changes.
    """
    budgets = {name: report.budget for name, report in reports.items()}
    valued = sorted(reports, key=lambda name: reports[name].marginal_value)
    if len(valued) < 2:
        return budgets
    poorest, richest = valued[0], valued[-1]
    if reports[richest].marginal_value <= reports[poorest].marginal_value:
        return budgets
    # Take from the poorest layer that still has something above its minimum.
    for giver in valued[:-1]:
        spare = reports[giver].budget - reports[giver].minimum
        if spare > 0 and reports[giver].marginal_value < reports[richest].marginal_value:
            moved = min(step, spare)
            budgets[giver] -= moved
            budgets[richest] += moved
            break
    return budgets
