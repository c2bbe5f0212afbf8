"""What caching saved: tokens and money not spent because an answer came from the cache.

Every cached answer keeps the usage and cost of producing it; every hit adds them to a ledger
kept in one-minute buckets of wall-clock time (these are figures a person reads, so they follow
the wall clock, not the loop's). A bucket holds sums per layer, not events, so the ledger's size
depends on how long it is kept (``retention``), not on traffic.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import attrs

from rgruntime.agents.figures import USD
from rgruntime.errors import InvalidArgumentError
from rgruntime.units import parse_duration

__all__ = ["LayerSavings", "Savings", "SavingsLedger"]

_BUCKET_SECONDS = 60


@attrs.frozen(kw_only=True)
class LayerSavings:
    """What one layer's hits saved."""

    hits: int = 0
    tokens_saved: int = 0
    cost_saved: float = attrs.field(default=USD(0.0), converter=USD)

    def __add__(self, other: LayerSavings) -> LayerSavings:
        return LayerSavings(
            hits=self.hits + other.hits,
            tokens_saved=self.tokens_saved + other.tokens_saved,
            cost_saved=self.cost_saved + other.cost_saved,
        )


@attrs.frozen(kw_only=True)
class Savings:
    """The guide's ``client.cache.get_savings(period=...)`` record.

    ``cached_responses`` counts answers served by the ``response`` layer; ``tokens_saved`` and
    ``cost_saved`` (USD) add up every layer's hits; ``layers`` has each layer's share.
    """

    period: float
    cached_responses: int
    tokens_saved: int
    #: USD; prints with six decimals (``str``), computes as a float.
    cost_saved: float = attrs.field(converter=USD)
    layers: Mapping[str, LayerSavings]


class SavingsLedger:
    """Sums of what hits saved, per minute and layer, for the last ``retention`` seconds."""

    def __init__(
        self, retention: float = 90 * 86400, clock: Callable[[], float] = time.time
    ) -> None:
        self._retention = retention
        self._clock = clock
        self._buckets: OrderedDict[int, dict[str, LayerSavings]] = OrderedDict()
        # Totals since the ledger began: the closed minutes are folded in once (``totals``).
        self._folded: dict[str, LayerSavings] = {}
        self._folded_until = -1  # minutes up to this one are in _folded

    def record_hit(self, layer: str, tokens: int, cost: float) -> None:
        """A hit in ``layer`` saved ``tokens`` and ``cost`` USD."""
        bucket = self._bucket()
        bucket[layer] = bucket.get(layer, LayerSavings()) + LayerSavings(
            hits=1, tokens_saved=tokens, cost_saved=cost
        )

    def savings(self, period: float | str = "30d") -> Savings:
        """What was saved in the last ``period`` (seconds, or a string such as ``"30d"``)."""
        seconds = parse_duration(period, field="period", error=InvalidArgumentError)
        oldest = (self._clock() - seconds) // _BUCKET_SECONDS
        layers: dict[str, LayerSavings] = {}
        for minute, bucket in reversed(self._buckets.items()):
            if minute < oldest:
                break
            for layer, saved in bucket.items():
                layers[layer] = layers.get(layer, LayerSavings()) + saved
        return Savings(
            period=seconds,
            cached_responses=layers.get("response", LayerSavings()).hits,
            tokens_saved=sum(saved.tokens_saved for saved in layers.values()),
            cost_saved=sum(saved.cost_saved for saved in layers.values()),
            layers=layers,
        )

    def totals(self) -> dict[str, LayerSavings]:
        """What each layer's hits saved since the ledger began (minutes read once, then
        folded: a call costs the minutes since the last one)."""
        current = int(self._clock() // _BUCKET_SECONDS)
        for minute, bucket in reversed(self._buckets.items()):
            if minute <= self._folded_until:
                break
            if minute < current:
                for layer, saved in bucket.items():
                    self._folded[layer] = self._folded.get(layer, LayerSavings()) + saved
        self._folded_until = max(self._folded_until, current - 1)
        totals = dict(self._folded)
        for layer, saved in self._buckets.get(current, {}).items():
            totals[layer] = totals.get(layer, LayerSavings()) + saved
        return totals

    def _bucket(self) -> dict[str, LayerSavings]:
        now = self._clock()
        minute = int(now // _BUCKET_SECONDS)
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = {}
            expired = (now - self._retention) // _BUCKET_SECONDS
            while self._buckets and next(iter(self._buckets)) < expired:
                self._buckets.popitem(last=False)
        return bucket
