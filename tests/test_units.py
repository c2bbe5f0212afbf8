"""Sizes ("100MB", SI vs IEC), durations ("5m") and the default entry-size estimate."""

from __future__ import annotations

import math
import sys

import pytest

from rgruntime import ConfigError, InvalidArgumentError, estimate_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Decimal SI units are powers of 1000 ...
        ("1B", 1),
        ("512KB", 512_000),
        ("100MB", 100_000_000),
        ("1.5GB", 1_500_000_000),
        ("2TB", 2_000_000_000_000),
        # ... binary IEC units powers of 1024.
        ("1KiB", 1024),
        ("64MiB", 64 * 1024**2),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("1TiB", 1024**4),
        # Unit letters are case-insensitive; spaces around the number and unit are allowed.
        ("100mb", 100_000_000),
        ("64mib", 64 * 1024**2),
        (" 10 kb ", 10_000),
        # A bare number is bytes.
        ("4096", 4096),
        (".5KB", 500),
        (4096, 4096),
        (1.5e3, 1500),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "100XB",
        "100M",  # ambiguous: neither MB nor MiB
        "MB",
        "",
        "-1MB",
        "1e3",
        "1,000",
        "0",
        0,
        -1,
        0.4,  # rounds to less than one byte
        True,  # a bool is not a size, even though it is an int
        None,
        [100],
        math.inf,
        math.nan,
    ],
)
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_size(bad, field="cache_config.max_size")
    error = raised.value
    assert error.field == "cache_config.max_size"
    assert error.value is bad
    assert "'100MB'" in error.accepted
    assert "MiB" in error.accepted
    assert str(error).startswith("cache_config.max_size: ")


def test_parse_size_raises_the_error_class_asked_for() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^size: '1XB'"):
        parse_size("1XB", field="size", error=InvalidArgumentError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (300, 300.0),
        (0.25, 0.25),
        ("45", 45.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("2 H", 7200.0),
    ],
)
def test_parse_duration(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad", ["soon", "5 minutes", "5y", "", "-5m", "0s", 0, -1, True, False, None, math.inf]
)
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_duration(bad, field="cache_config.default_ttl")
    assert raised.value.field == "cache_config.default_ttl"
    assert raised.value.value is bad
    assert "'5m'" in raised.value.accepted


def test_estimate_size_of_flat_values_is_getsizeof() -> None:
    for value in ("x" * 1000, b"y" * 1000, 12345, 1.5, None):
        assert estimate_size(value) == sys.getsizeof(value)


def test_estimate_size_counts_what_containers_hold() -> None:
    payload = "z" * 10_000
    assert estimate_size({"answer": payload}) > 10_000
    assert estimate_size([payload, payload]) < 2 * 10_000  # a shared object counts once


def test_estimate_size_counts_object_attributes() -> None:
    class WithDict:
        def __init__(self) -> None:
            self.text = "a" * 5000

    class WithSlots:
        __slots__ = ("text",)

        def __init__(self) -> None:
            self.text = "b" * 5000

    assert estimate_size(WithDict()) > 5000
    assert estimate_size(WithSlots()) > 5000


def test_estimate_size_survives_cycles() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    assert estimate_size(cycle) == sys.getsizeof(cycle)
