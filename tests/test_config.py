"""Configuration: the guide's dict form, resolution of every layer, and ConfigError messages."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import rgruntime
from rgruntime import BUILTIN_LAYERS, MISSING, ConfigError, LayerConfig, RuntimeConfig

GUIDE_CONFIG = {"enabled": True, "default_ttl": 3600, "max_size": "100MB", "strategy": "lru"}


def test_the_guides_dict_is_accepted() -> None:
    config = RuntimeConfig.from_mapping(GUIDE_CONFIG)
    assert config.enabled is True
    assert config.default_ttl == 3600.0
    assert config.max_size == 100_000_000
    assert config.strategy == "lru"
    assert set(config.layers) == set(BUILTIN_LAYERS)


def test_builtin_layers_follow_the_guides_table() -> None:
    layers = RuntimeConfig.from_mapping({}).layers
    ttls = {name: (layer.ttl, layer.max_ttl) for name, layer in layers.items()}
    assert ttls == {
        "response": (3600.0, 86400.0),
        "session": (None, None),
        "model": (86400.0, 7 * 86400.0),
        "tool": (300.0, 3600.0),
        "memory": (900.0, None),
    }


def test_global_settings_are_layer_defaults_that_layers_override() -> None:
    config = RuntimeConfig.from_mapping(
        {
            "default_ttl": "10m",
            "max_entries": 100,
            "strategy": "ttl",
            "sliding_ttl": True,
            "layers": {
                "embeddings": {},
                "rerank": {"default_ttl": "1d", "max_entries": 5, "strategy": "lru"},
                "tool": {"ttl": "10m"},
            },
        }
    )
    embeddings = config.layers["embeddings"]
    assert (embeddings.ttl, embeddings.max_entries, embeddings.strategy) == (600.0, 100, "ttl")
    assert embeddings.sliding_ttl is True
    rerank = config.layers["rerank"]
    assert (rerank.ttl, rerank.max_entries, rerank.strategy) == (86400.0, 5, "lru")
    assert config.layers["tool"].ttl == 600.0
    # The built-in layers keep the guide's TTLs unless a layer setting says otherwise.
    assert config.layers["response"].ttl == 3600.0
    assert config.layers["response"].max_entries == 100


def test_default_ttl_none_means_custom_layers_never_expire() -> None:
    config = RuntimeConfig.from_mapping({"default_ttl": None, "layers": {"notes": {}}})
    assert config.layers["notes"].ttl is None


def test_max_size_is_split_across_layers_without_their_own() -> None:
    config = RuntimeConfig.from_mapping(
        {
            "max_size": "100MB",
            "layers": {"embeddings": {"max_size": "40MB"}, "model": {"budget_share": 2}},
        }
    )
    budgets = {name: layer.max_size for name, layer in config.layers.items()}
    # 60 MB left for six shares: model has two of them.
    assert budgets == {
        "embeddings": 40_000_000,
        "response": 10_000_000,
        "session": 10_000_000,
        "model": 20_000_000,
        "tool": 10_000_000,
        "memory": 10_000_000,
    }


def test_layer_budgets_may_not_exceed_the_runtime_budget() -> None:
    with pytest.raises(ConfigError) as raised:
        RuntimeConfig.from_mapping({"max_size": "1MB", "layers": {"tool": {"max_size": "2MB"}}})
    assert raised.value.field == "cache_config.max_size"
    assert "(2000000 bytes)" in raised.value.accepted


def test_a_layer_config_object_is_accepted_in_the_dict() -> None:
    custom = LayerConfig(name="embeddings", ttl="1d", max_entries=10)
    config = RuntimeConfig.from_mapping({"layers": {"embeddings": custom}})
    assert config.layers["embeddings"] == custom


def test_layer_config_built_directly_parses_its_values() -> None:
    # The attrs form accepts what the dict form accepts, and stores the parsed values.
    config = LayerConfig(name="notes", ttl="5m", max_ttl="1h", max_size="64MiB")
    assert (config.ttl, config.max_ttl, config.max_size) == (300.0, 3600.0, 64 * 1024**2)


def test_runtime_config_object_is_used_as_given() -> None:
    config = RuntimeConfig.from_mapping({"max_entries": 7})
    assert RuntimeConfig.coerce(config) is config
    assert RuntimeConfig.coerce(None) == RuntimeConfig.from_mapping({})


BAD_CONFIGS: list[tuple[str, dict[str, Any], str, object, str]] = [
    # (test id, config, field, value, words of what is accepted)
    ("unknown key", {"max_sise": "1MB"}, "cache_config.max_sise", "1MB", "max_size"),
    ("bad unit", {"max_size": "100XB"}, "cache_config.max_size", "100XB", "'100MB'"),
    ("negative ttl", {"default_ttl": -1}, "cache_config.default_ttl", -1, "positive"),
    ("zero ttl", {"default_ttl": 0}, "cache_config.default_ttl", 0, "positive"),
    ("bad ttl text", {"default_ttl": "soon"}, "cache_config.default_ttl", "soon", "'5m'"),
    ("unknown strategy", {"strategy": "fifo"}, "cache_config.strategy", "fifo", "'lru', 'lfu'"),
    (
        "bad tier size",
        {"strategy": "tiered", "tiers": [{"name": "hot", "size": "1XB"}]},
        "cache_config.tiers[0].size",
        "1XB",
        "MB",
    ),
    ("bool as size", {"max_size": True}, "cache_config.max_size", True, "bytes"),
    ("bool as ttl", {"default_ttl": False}, "cache_config.default_ttl", False, "seconds"),
    ("bool as count", {"max_entries": True}, "cache_config.max_entries", True, "whole number"),
    ("zero entries", {"max_entries": 0}, "cache_config.max_entries", 0, "positive"),
    ("str as bool", {"enabled": "yes"}, "cache_config.enabled", "yes", "True or False"),
    ("not a dict", {"layers": ["tool"]}, "cache_config.layers", ["tool"], "dict"),
    (
        "bad layer name",
        {"layers": {"my layer": {}}},
        "cache_config.layers",
        "my layer",
        "identifier",
    ),
    ("empty layer name", {"layers": {"": {}}}, "cache_config.layers", "", "identifier"),
    (
        "layer settings not a dict",
        {"layers": {"notes": 5}},
        "cache_config.layers.notes",
        5,
        "dict",
    ),
    (
        "unknown layer key",
        {"layers": {"tool": {"tll": 5}}},
        "cache_config.layers.tool.tll",
        5,
        "max_ttl",
    ),
    (
        "layer bad unit",
        {"layers": {"tool": {"max_size": "1QB"}}},
        "cache_config.layers.tool.max_size",
        "1QB",
        "MiB",
    ),
    (
        "layer strategy",
        {"layers": {"notes": {"strategy": "mru"}}},
        "cache_config.layers.notes.strategy",
        "mru",
        "'lru'",
    ),
    (
        "layer ttl above its max_ttl",
        {"layers": {"tool": {"ttl": "2h"}}},
        "cache_config.layers.tool.ttl",
        7200.0,
        "max_ttl (3600 s)",
    ),
    (
        "zero budget share",
        {"layers": {"tool": {"budget_share": 0}}},
        "cache_config.layers.tool.budget_share",
        0,
        "positive",
    ),
    (
        "bool sliding flag as number",
        {"layers": {"tool": {"sliding_ttl": 1}}},
        "cache_config.layers.tool.sliding_ttl",
        1,
        "True or False",
    ),
]


@pytest.mark.parametrize(
    ("config", "field", "value", "accepted"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONFIGS],
)
def test_bad_config_names_field_value_and_what_is_accepted(
    config: dict[str, Any], field: str, value: object, accepted: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        rgruntime.open_runtime(config)  # checked at once, before any event loop runs
    error = raised.value
    assert error.field == field
    assert error.value == value
    assert accepted in error.accepted
    message = str(error)
    assert message.startswith(f"{field}: {value!r} is not accepted")
    assert accepted in message


def test_config_that_is_not_a_dict_is_rejected() -> None:
    with pytest.raises(ConfigError) as raised:
        RuntimeConfig.from_mapping(["max_size"])  # type: ignore[arg-type]
    assert raised.value.field == "cache_config"


def test_layer_config_built_directly_is_checked() -> None:
    with pytest.raises(ConfigError) as raised:
        LayerConfig(name="notes", max_size="100XB")
    assert raised.value.field == "layers.notes.max_size"
    with pytest.raises(ConfigError, match=r"^layers\.my-layer\.name"):
        LayerConfig(name="my-layer")
    with pytest.raises(ConfigError, match=r"^layers\.notes\.ttl"):
        LayerConfig(name="notes", ttl="2h", max_ttl="1h")


@pytest.mark.anyio
async def test_disabled_runtime_makes_every_layer_a_pass_through() -> None:
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        return f"answer {calls}"

    async with rgruntime.open_runtime({**GUIDE_CONFIG, "enabled": False}) as runtime:
        assert set(runtime.layers) == set(BUILTIN_LAYERS)
        for layer in runtime.layers.values():
            await layer.set("k", "v")
            assert layer.get_nowait("k", MISSING) is MISSING
            assert "k" not in layer
            assert await layer.get_or_load("k", loader) == f"answer {calls}"
            assert await layer.get_or_load("k", loader) == f"answer {calls}"
            await layer.cleanup()
            assert layer.stats().entries == 0
        # Two loads per layer, none shared or stored.
        assert calls == 2 * len(BUILTIN_LAYERS)
        added = await runtime.add_layer("notes")
        await added.set("k", "v")
        assert added.get_nowait("k", MISSING) is MISSING


@pytest.mark.anyio
async def test_a_disabled_layer_passes_through_while_the_others_cache() -> None:
    loads = 0

    async def loader() -> int:
        nonlocal loads
        loads += 1
        return loads

    async with rgruntime.open_runtime({"layers": {"model": {"enabled": False}}}) as runtime:
        model, tool = runtime.layer("model"), runtime.layer("tool")
        assert [await model.get_or_load("k", loader) for _ in range(3)] == [1, 2, 3]
        assert [await tool.get_or_load("k", loader) for _ in range(3)] == [4, 4, 4]
        await model.set("direct", 1)
        await tool.set("direct", 1)
        assert "direct" not in model
        assert "direct" in tool


@pytest.mark.anyio
async def test_settings_reach_the_running_layers() -> None:
    config = {"max_entries": 50, "layers": {"embeddings": {"ttl": "1d", "max_size": "1MB"}}}
    async with rgruntime.open_runtime(config) as runtime:
        embeddings = runtime.layer("embeddings")
        assert embeddings.config.ttl == 86400.0
        assert embeddings.stats().max_size == 1_000_000
        assert runtime.layer("tool").stats().max_entries == 50


def test_opening_parses_config_without_an_event_loop() -> None:
    # Nothing binds to an event loop before the block is entered: a runtime can be built in
    # synchronous code and opened later, on either backend.
    runtime = rgruntime.open_runtime(GUIDE_CONFIG)
    assert not runtime.is_open

    async def use() -> object:
        async with runtime:
            return runtime.layer("tool").config.max_size

    assert anyio.run(use, backend="trio") == 20_000_000


def test_a_runtime_config_built_directly_gets_the_builtin_layers() -> None:
    config = RuntimeConfig(max_size="1MB", default_ttl="5m")  # type: ignore[arg-type]
    assert config.max_size == 1_000_000
    assert config.default_ttl == 300.0
    assert set(config.layers) == set(BUILTIN_LAYERS)
    assert sum(layer.max_size or 0 for layer in config.layers.values()) <= 1_000_000


def test_a_runtime_config_built_directly_is_validated() -> None:
    with pytest.raises(ConfigError) as raised:
        RuntimeConfig(max_size="1XB")  # type: ignore[arg-type]
    assert raised.value.field == "cache_config.max_size"


def test_a_custom_layer_with_a_short_max_ttl_caps_the_inherited_ttl() -> None:
    config = RuntimeConfig.from_mapping({"layers": {"quick": {"max_ttl": "10m"}}})
    assert config.layers["quick"].ttl == 600.0
