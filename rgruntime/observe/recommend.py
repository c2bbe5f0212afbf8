"""Recommendations read from a miss-ratio curve and from re-request times (pure functions)."""

from __future__ import annotations

import math

from rgruntime.observe.histogram import LogHistogram
from rgruntime.observe.shards import MissRatioCurve

__all__ = ["knee_size", "recommended_size", "recommended_ttl"]


def recommended_size(curve: MissRatioCurve, target_hit_rate: float) -> int | None:
    """The smallest size (entries) of ``curve`` whose hit rate (percent) reaches the target;
    None when no size of the curve does."""
    for size, miss in zip(curve.sizes, curve.miss_ratios, strict=True):
        if 100.0 * (1.0 - miss) >= target_hit_rate:
            return size
    return None


def knee_size(curve: MissRatioCurve) -> int | None:
    """The curve's knee: the point farthest below the chord from its first to its last point,
    with sizes on a log scale (Kneedle, Satopää et al. 2011). Past it, each doubling of the
    size buys less. None for a curve of fewer than three points or a flat one."""
    sizes, ratios = curve.sizes, curve.miss_ratios
    if len(sizes) < 3 or ratios[0] - ratios[-1] <= 1e-9:
        return None
    xs = [math.log(size) for size in sizes]
    span_x, span_y = xs[-1] - xs[0], ratios[0] - ratios[-1]
    best, best_gap = None, 0.0
    for size, x, ratio in zip(sizes, xs, ratios, strict=True):
        # Normalised: x from 0 to 1, the gain (1 - normalised ratio) from 0 to 1.
        gain = (ratios[0] - ratio) / span_y
        gap = gain - (x - xs[0]) / span_x
        if gap > best_gap:
            best, best_gap = size, gap
    return best


def recommended_ttl(
    rerequest_times: LogHistogram,
    expired_then_asked: LogHistogram,
    *,
    coverage: float = 0.9,
) -> float | None:
    """A TTL (seconds) that keeps an entry until ``coverage`` of the re-requests arrive.

    ``rerequest_times``: seconds between two requests of the same key. ``expired_then_asked``:
    for misses on keys that had expired, the seconds from the write to the request (the TTL they
    would have needed). The larger of the two quantiles wins: a TTL shorter than what expired
    entries needed loses those hits. None without any data.
    """
    candidates = [
        value
        for value in (
            rerequest_times.quantile(coverage),
            expired_then_asked.quantile(coverage),
        )
        if value is not None
    ]
    return max(candidates) if candidates else None
