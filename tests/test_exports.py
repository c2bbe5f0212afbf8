"""The public API: what ``import rgruntime`` promises (README, docs and the caching guide)."""

from __future__ import annotations

import pytest

import rgruntime

DOCUMENTED = (
    "open_runtime",
    "Runtime",
    "Layer",
    "MISSING",
    "ConfigError",
    "InvalidArgumentError",
    "LayerNotFoundError",
    "LoaderRecursionError",
    "RuntimeClosedError",
    "CacheStats",
    "LayerStatistics",
    "RuntimeConfig",
    "LayerConfig",
    "parse_size",
    "parse_duration",
    "estimate_size",
    "LRUPolicy",
    "TTLPolicy",
    "SessionCapacityError",
    # The client's memory, events and warming (docs/client.md).
    "Event",
    "EventBus",
    "EventStats",
    "MemoryConfig",
    "MemoryRecord",
    "MemoryResult",
    "PreloadResult",
    "WarmProgress",
    "WarmReport",
    "WarmingSchedule",
    # The caching guide's tool caching and the dependency graph.
    "Tool",
    "cache",
    "NoRuntimeError",
    "use_runtime",
    "record_read",
    "AutoInvalidateConfig",
    # Operations (docs/operations.md).
    "Analysis",
    "Diagnosis",
    "MetricPoint",
    "MemoryUsage",
    "StaleEntry",
    "Alerts",
    "FiredAlert",
    "Operations",
)


@pytest.mark.parametrize("name", rgruntime.__all__)
def test_every_name_in_all_exists(name: str) -> None:
    assert getattr(rgruntime, name, None) is not None


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_names_are_exported(name: str) -> None:
    assert name in rgruntime.__all__
    assert hasattr(rgruntime, name)


def test_all_has_no_duplicates() -> None:
    assert len(set(rgruntime.__all__)) == len(rgruntime.__all__)


def test_errors_share_a_base_and_the_builtin_kinds() -> None:
    # Callers may catch the project's base class, or the builtin kind the error is.
    assert issubclass(rgruntime.ConfigError, rgruntime.RGRuntimeError)
    assert issubclass(rgruntime.ConfigError, ValueError)
    assert issubclass(rgruntime.InvalidArgumentError, ValueError)
    assert issubclass(rgruntime.LayerNotFoundError, LookupError)
    assert issubclass(rgruntime.LoaderRecursionError, RuntimeError)
    assert issubclass(rgruntime.RuntimeClosedError, RuntimeError)
    for error in (rgruntime.InvalidArgumentError, rgruntime.LayerNotFoundError):
        assert issubclass(error, rgruntime.RGRuntimeError)


def test_missing_is_a_falsy_singleton_distinct_from_none() -> None:
    assert rgruntime.MISSING is rgruntime.MissingType.MISSING
    assert rgruntime.MISSING is not None
    assert not rgruntime.MISSING
    assert repr(rgruntime.MISSING) == "rgruntime.MISSING"


def test_version_is_a_string() -> None:
    assert isinstance(rgruntime.__version__, str)
    assert rgruntime.__version__


def test_the_guides_tool_import_path() -> None:
    from rgruntime.tools import Tool, cache

    assert Tool is rgruntime.Tool
    assert cache is rgruntime.cache
    assert issubclass(rgruntime.NoRuntimeError, rgruntime.RuntimeClosedError)
