"""The pure pieces: templates of volatile keys, histograms, the sampler, the recommendations."""

from __future__ import annotations

import pytest

from rgruntime.observe.figures import Bytes, Seconds
from rgruntime.observe.histogram import LogHistogram, bin_bounds, bin_of
from rgruntime.observe.recommend import knee_size, recommended_size, recommended_ttl
from rgruntime.observe.shards import MissRatioCurve, ReuseSampler
from rgruntime.observe.variance import KeyVariance, differing_parts, template


@pytest.mark.parametrize(
    ("first", "second", "parts"),
    [
        (
            "weather Paris 2026-12-07T10:00:00Z",
            "weather Paris 2026-12-07T10:05:13Z",
            ("timestamp",),
        ),
        ("at 10:00 today", "at 10:05 today", ("timestamp",)),
        ("since 1765101600", "since 1765101700", ("timestamp",)),
        (
            "order 0b6f1c8e-2a4e-4a52-9a3e-3c1f2b9d8e11",
            "order 7d1f2a33-5b2c-4c1d-8e4f-9a0b1c2d3e4f",
            ("uuid",),
        ),
        ("user 48213 profile", "user 99120 profile", ("id",)),
        ("trace deadbeefdeadbeef01", "trace 0123456789abcdef99", ("id",)),
        ("What are  your hours?", "What are your hours? ", ("whitespace",)),
        ("req-100007 at 2026-12-07", "req-100014 at 2026-12-08", ("timestamp", "id")),
    ],
)
def test_volatile_parts_are_masked_and_named(
    first: str, second: str, parts: tuple[str, ...]
) -> None:
    assert template(first) == template(second)
    assert differing_parts(first, second) == parts


@pytest.mark.parametrize(
    ("first", "second"),
    [("top 5 products", "top 6 products"), ("weather Paris", "weather Lima"), ("a", "A")],
)
def test_meaningful_differences_stay(first: str, second: str) -> None:
    assert template(first) != template(second)


def test_key_variance_counts_misses_that_normalising_would_have_served() -> None:
    variance = KeyVariance(max_templates=2)
    assert variance.miss("hours 10:00", "response", "a") == ()
    assert variance.miss("hours 10:05", "response", "a") == ("timestamp",)
    assert variance.miss("hours 10:05", "response", "b") == ()  # another agent's own request
    assert variance.shares(agent_id="a")[:2] == (2, 1)
    assert variance.shares(frozenset({"tool"}))[:2] == (0, 0)
    # A bounded memory: the oldest template is forgotten.
    variance.miss("x 10:00", "response")
    variance.miss("y 10:00", "response")
    assert variance.miss("hours 10:07", "response", "a") == ()


def test_histogram_bins_are_fine_and_bounded() -> None:
    for value in (0, 1, 63, 64, 65, 1000, 123_456.7, 2.0**40):
        low, high = bin_bounds(bin_of(value))
        assert low <= value < high
        assert high - low <= max(1.0, value / 32)
    histogram = LogHistogram()
    for value in range(1000):
        histogram.add(value)
    assert len(histogram) < 64 + 32 * 4  # 1000 < 64 * 2**4
    assert histogram.quantile(0.5) == pytest.approx(500, rel=0.03)
    assert histogram.weight_below(100) == pytest.approx(100, rel=0.03)
    assert LogHistogram().quantile(0.9) is None


def test_sampler_is_exact_below_its_bound() -> None:
    sampler = ReuseSampler(max_keys=100)
    for _ in range(3):
        for key in "abcde":  # a loop of 5 keys: LRU of 5 hits, of 4 misses everything
            sampler.access(key)
    curve = sampler.curve([4, 5])
    assert curve.miss_ratios == (1.0, pytest.approx(5 / 15))
    assert sampler.sampling_rate == 1.0


def test_sampler_memory_is_bounded() -> None:
    sampler = ReuseSampler(max_keys=64)
    for index in range(10_000):
        sampler.access(f"k{index % 3000}")
    assert sampler.tracked_keys <= 64
    assert 0 < sampler.sampling_rate < 0.1
    assert sampler.footprint() == pytest.approx(3000, rel=0.4)


def test_recommendations() -> None:
    curve = MissRatioCurve((1, 10, 100, 1000), (0.9, 0.5, 0.3, 0.29), 1000, 1.0)
    assert recommended_size(curve, 50) == 10
    assert recommended_size(curve, 69) == 100
    assert recommended_size(curve, 90) is None
    assert knee_size(curve) == 10
    assert curve.miss_ratio(55) == pytest.approx(0.4)
    rerequests, needed = LogHistogram(), LogHistogram()
    for seconds in range(100):
        rerequests.add(seconds)
    assert recommended_ttl(rerequests, needed) == pytest.approx(90, rel=0.05)
    needed.add(500)
    assert recommended_ttl(rerequests, needed) == pytest.approx(500, rel=0.05)
    assert recommended_ttl(LogHistogram(), LogHistogram()) is None


def test_figures_print_as_the_configuration_reads_them() -> None:
    assert str(Bytes(12_500_000)) == "12.5MB"
    assert str(Bytes(100_000_000)) == "100MB"
    assert str(Bytes(512)) == "512B"
    assert str(Seconds(3599.6)) == "3600s"
