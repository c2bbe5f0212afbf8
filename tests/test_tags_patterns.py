"""Invalidation by hierarchical tag and by glob pattern, and the indices behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sortedcontainers import SortedList

import rgruntime
from rgruntime import InvalidArgumentError, Layer
from rgruntime.runtime.indices import KEY_CHUNK, KeyIndex, TagIndex, literal_prefix
from tests.support import jump_clock


@pytest.fixture
async def layer() -> AsyncIterator[Layer]:
    async with rgruntime.open_runtime() as runtime:
        yield runtime.layer("tool")


def live(layer: Layer, keys: list[str]) -> list[str]:
    return [key for key in keys if key in layer]


TAGGED = {
    "root": ["products"],
    "phones": ["products:electronics:phones"],
    "electronics": ["products:electronics"],
    "books": ["products:books", "catalog"],
    "x-upper": ["productsX"],
    "x-dash": ["products-x"],
    "x-underscore": ["products_x"],
    "other": ["catalog"],
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tag", "removed"),
    [
        ("products", ["root", "phones", "electronics", "books"]),
        ("products:electronics", ["phones", "electronics"]),
        ("products:electronics:phones", ["phones"]),
        ("products:electronics:phones:android", []),
        ("products:elec", []),  # a prefix of a level is not a parent
        ("productsX", ["x-upper"]),
        ("catalog", ["books", "other"]),
        ("product", []),
    ],
)
async def test_hierarchical_tags(layer: Layer, tag: str, removed: list[str]) -> None:
    for key, tags in TAGGED.items():
        await layer.set(key, key, tags=tags)
    assert await layer.invalidate(tags=[tag]) == len(removed)
    assert live(layer, list(TAGGED)) == [key for key in TAGGED if key not in removed]


@pytest.mark.anyio
async def test_several_tags_remove_the_union(layer: Layer) -> None:
    for key, tags in TAGGED.items():
        await layer.set(key, key, tags=tags)
    assert await layer.invalidate(tags=["products:electronics", "catalog", "products-x"]) == 5
    assert live(layer, list(TAGGED)) == ["root", "x-upper", "x-underscore"]


KEYS = [
    "weather_paris",
    "weather_rome",
    "weather_",
    "weather-paris",
    "Weather_oslo",
    "weatherman",
    "news_a",
    "news_b",
    "news_c",
    "news_ab",
    "a*b",
    "",
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ("weather_*", ["weather_paris", "weather_rome", "weather_"]),
        ("weather*", ["weather_paris", "weather_rome", "weather_", "weather-paris", "weatherman"]),
        ("*_paris", ["weather_paris"]),
        ("*paris", ["weather_paris", "weather-paris"]),
        ("news_?", ["news_a", "news_b", "news_c"]),
        ("news_[ab]", ["news_a", "news_b"]),
        ("news_[!ab]", ["news_c"]),
        ("news_??", ["news_ab"]),
        ("[Ww]eather_*", ["weather_paris", "weather_rome", "weather_", "Weather_oslo"]),
        ("news_a", ["news_a"]),  # no wildcard: the one key
        ("a[*]b", ["a*b"]),  # a bracketed wildcard is literal
        ("WEATHER_*", []),  # case-sensitive
        ("*", list(KEYS)),
    ],
)
async def test_glob_patterns(layer: Layer, pattern: str, matched: list[str]) -> None:
    for key in KEYS:
        await layer.set(key, key)
    assert await layer.invalidate(pattern=pattern) == len(matched)
    assert live(layer, KEYS) == [key for key in KEYS if key not in matched]


@pytest.mark.anyio
async def test_an_empty_pattern_is_rejected(layer: Layer) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await layer.invalidate(pattern="")
    assert raised.value.field == "pattern"


@pytest.mark.anyio
async def test_runtime_wide_tags_and_patterns() -> None:
    async with rgruntime.open_runtime() as runtime:
        for name in ("response", "tool", "memory"):
            await runtime.layer(name).set(f"{name}:user:1", 1, tags=[f"user:1:{name}"])
            await runtime.layer(name).set(f"{name}:user:2", 2, tags=["user:2"])
        assert await runtime.invalidate(tags=["user:1"]) == 3
        assert await runtime.invalidate(pattern="*:user:?") == 3
        assert runtime.stats().entries == 0


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_invalidation_counts_only_live_entries(layer: Layer) -> None:
    await layer.set("weather_short", 1, ttl=10, tags=["weather"])
    await layer.set("weather_long", 2, ttl=100, tags=["weather"])
    await layer.set("weather_forever", 3, ttl="1h", tags=["weather"])
    await layer.cleanup()
    jump_clock(10)  # weather_short is dead, though the actor has not removed it yet
    assert await layer.invalidate(key="weather_short") == 0
    jump_clock(90)
    assert await layer.invalidate(pattern="weather_*", tags=["weather"]) == 1
    stats = layer.stats()
    assert (stats.invalidations, stats.expirations, stats.entries) == (1, 2, 0)


class CountingSortedList(SortedList):  # type: ignore[type-arg]
    """A SortedList that counts the items it hands out, however they are read."""

    visited = 0

    def _count(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            CountingSortedList.visited += 1
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self._count(super().__iter__())

    def irange(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._count(super().irange(*args, **kwargs))

    def islice(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._count(super().islice(*args, **kwargs))

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        CountingSortedList.visited += len(found) if isinstance(index, slice) else 1
        return found


def counting_key_index(keys: list[str]) -> KeyIndex:
    index = KeyIndex()
    index._keys = CountingSortedList(keys)
    CountingSortedList.visited = 0
    return index


def test_a_literal_prefix_limits_the_keys_a_pattern_visits() -> None:
    keys = [f"user:{i}" for i in range(1000)] + [f"weather_{city}" for city in "abcdefghij"]
    keys += [f"zeta_{i}" for i in range(1000)]
    index = counting_key_index(keys)
    found = index.matching("weather_*")
    assert sorted(found) == sorted(key for key in keys if key.startswith("weather_"))
    # Keys are read a chunk at a time from the start of the range: one chunk, not the 2,010.
    assert CountingSortedList.visited <= KEY_CHUNK

    CountingSortedList.visited = 0
    assert index.matching("weather_[ab]") == ["weather_a", "weather_b"]
    assert CountingSortedList.visited <= KEY_CHUNK

    # Without a literal prefix every key is a candidate: the counter sees a full scan.
    CountingSortedList.visited = 0
    assert len(index.matching("*_a")) == 1
    assert CountingSortedList.visited == len(keys)


def test_a_pattern_without_wildcards_is_a_lookup() -> None:
    index = counting_key_index([f"k{i}" for i in range(100)])
    assert index.matching("k42") == ["k42"]
    assert index.matching("k420") == []
    assert CountingSortedList.visited <= 1


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("weather_*", "weather_"), ("a?c", "a"), ("[ab]x", ""), ("*", ""), ("plain", "plain")],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def test_tag_index_finds_children_only_below_a_separator() -> None:
    index = TagIndex()
    index.add("a", ["products"])
    index.add("b", ["products:phones"])
    index.add("c", ["productsX", "products-x", "products;"])
    index.add("d", ["products:phones:android", "other"])
    assert index.keys_under("products") == {"a", "b", "d"}
    assert index.keys_under("products:phones") == {"b", "d"}
    index.discard("d", ["products:phones:android", "other"])
    assert index.keys_under("products") == {"a", "b"}
    assert index.keys_under("other") == set()
    assert len(index) == 5  # products, products:phones and the three look-alikes
