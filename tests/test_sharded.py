"""ShardedDict behaves as a dict, before and after it splits, and keeps its keys untracked."""

from __future__ import annotations

import gc
import random
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgruntime.semantic._sharded import SPLIT_AT, ShardedDict

operations = st.lists(
    st.tuples(st.sampled_from(["set", "del", "pop", "get"]), st.integers(0, 40), st.integers()),
    max_size=200,
)


@given(operations)
@settings(max_examples=300)
def test_it_answers_as_a_dict_does(steps: list[tuple[str, int, int]]) -> None:
    # Splitting at 4 keys: most runs go through the split and on in the 256 shards.
    sharded: ShardedDict[int, int] = ShardedDict(split_at=4)
    plain: dict[int, int] = {}
    for action, key, value in steps:
        if action == "set":
            sharded[key] = value
            plain[key] = value
        elif action == "del":
            if key in plain:
                del sharded[key]
                del plain[key]
            else:
                with pytest.raises(KeyError):
                    del sharded[key]
        elif action == "pop":
            assert sharded.pop(key, None) == plain.pop(key, None)
        else:
            assert sharded.get(key) == plain.get(key)
        assert len(sharded) == len(plain)
        assert bool(sharded) == bool(plain)
    assert dict(sharded.items()) == plain
    assert sorted(sharded) == sorted(plain)


def test_it_splits_past_the_threshold_and_keeps_every_key() -> None:
    count = SPLIT_AT * 3
    sharded: ShardedDict[str, int] = ShardedDict()
    for number in range(count):
        sharded[f"key-{number}"] = number
    assert len(sharded._shards) == 256
    assert len(sharded) == count
    assert sum(map(len, sharded._shards)) == count
    for number in random.Random(0).sample(range(count), 500):
        assert sharded[f"key-{number}"] == number
        assert f"key-{number}" in sharded
    assert sharded.pop("key-7") == 7
    assert "key-7" not in sharded
    with pytest.raises(KeyError):
        sharded.pop("key-7")
    del sharded["key-8"]
    assert len(sharded) == count - 2
    sharded.clear()
    assert len(sharded) == 0
    assert not sharded
    assert sharded._shards == [{}]  # small again: one dict


def test_setting_an_existing_key_does_not_count_it_twice() -> None:
    sharded = ShardedDict([("a", 1), ("b", 2)])
    sharded["a"] = 3
    assert len(sharded) == 2
    assert sharded == {"a": 3, "b": 2}


def test_fromkeys_and_update() -> None:
    sharded = ShardedDict.fromkeys(range(5), None)
    sharded.update(dict.fromkeys(range(5, 10)))
    assert sorted(sharded) == list(range(10))
    assert repr(ShardedDict([(1, "x")])) == "ShardedDict({1: 'x'})"


def test_a_map_of_strings_and_ints_stays_untracked_by_the_collector() -> None:
    sharded: ShardedDict[str, int] = ShardedDict()
    for number in range(SPLIT_AT + 1):
        sharded[str(number)] = number
    assert not any(gc.is_tracked(shard) for shard in sharded._shards)


def test_a_mapping_given_to_the_constructor_is_read_as_a_mapping() -> None:
    assert dict(ShardedDict({"ab": 1}).items()) == {"ab": 1}


def test_a_reader_in_another_thread_never_misses_a_key_during_a_split_or_a_clear() -> None:
    """Every operation reads the list of shards once: a split or a clear swaps it whole."""
    failures: list[str] = []
    current: list[ShardedDict[int, int]] = [ShardedDict([(300, 1)])]
    clearing = threading.Event()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            mapping, cleared = current[0], clearing.is_set()
            try:
                if 300 not in mapping and not cleared:
                    failures.append("a key present throughout was missing")
            except IndexError as error:
                failures.append(repr(error))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(300):  # splits, with key 300 in the map all along
            mapping = ShardedDict(((key, key) for key in range(1, 301)), split_at=300)
            current[0] = mapping
            mapping[-1] = -1
        clearing.set()
        for _ in range(300):  # clears of a split map
            mapping = ShardedDict(((key, key) for key in range(1, 302)), split_at=300)
            current[0] = mapping
            mapping.clear()
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert failures == []
