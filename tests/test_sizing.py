"""The byte budget's weights: a deep estimate that never raises, keys and per-entry overhead."""

from __future__ import annotations

import array
import collections
import dataclasses
import gc
import mmap
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.sizing_overhead import measure_entry_overhead
from rgruntime import sizing
from rgruntime.errors import InvalidArgumentError
from rgruntime.sizing import ENTRY_OVERHEAD, entry_weight, estimate_size, weigh

MB = 1_000_000


def payload() -> bytes:
    """A fresh megabyte (a new object each call, so two calls are not shared)."""
    return os.urandom(MB)


# -- containers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda p: collections.deque([p]), id="deque"),
        pytest.param(lambda p: collections.OrderedDict(a=p), id="OrderedDict"),
        pytest.param(lambda p: collections.defaultdict(list, a=[p]), id="defaultdict"),
        pytest.param(lambda p: collections.Counter({p: 1}), id="Counter-key"),
        pytest.param(lambda p: collections.ChainMap({"a": p}), id="ChainMap"),
        pytest.param(lambda p: collections.UserDict(a=p), id="UserDict"),
        pytest.param(lambda p: collections.UserList([p]), id="UserList"),
        pytest.param(lambda p: {p: 1}, id="dict-key"),
        pytest.param(lambda p: [p], id="list"),
        pytest.param(lambda p: (p,), id="tuple"),
        pytest.param(lambda p: {p}, id="set"),
        pytest.param(lambda p: frozenset([p]), id="frozenset"),
        pytest.param(lambda p: iter([p]), id="list-iterator"),
    ],
)
def test_every_container_kind_counts_what_it_holds(wrap: Callable[[bytes], object]) -> None:
    assert estimate_size(wrap(payload())) >= MB


def test_a_dict_subclass_counts_its_str_keys() -> None:
    # A dict's own traversal skips str keys: they must be counted all the same.
    big_key = "k" * MB
    assert estimate_size(collections.OrderedDict({big_key: 1})) >= MB
    assert estimate_size({big_key: 1}) >= MB


def test_a_megabyte_five_dicts_deep_is_counted() -> None:
    value: object = payload()
    for _ in range(5):
        value = {"level": value}
    assert estimate_size(value) >= MB


def test_nesting_deeper_than_the_recursion_limit_is_walked() -> None:
    value: object = payload()
    for _ in range(sys.getrecursionlimit() * 10):
        value = [value]
    # Every level is a one-item list (56 B + GC header); the payload is at the bottom.
    assert estimate_size(value) >= MB + sys.getrecursionlimit() * 10 * 56


def test_a_shared_object_is_counted_once() -> None:
    shared = payload()
    assert estimate_size([shared, shared, {"again": shared}]) < 1.01 * MB
    assert estimate_size([payload(), payload()]) >= 2 * MB


def test_cycles_terminate() -> None:
    ring: list[Any] = [payload()]
    ring.append(ring)
    node: dict[str, Any] = {}
    node["self"] = node
    assert MB <= estimate_size(ring) < 1.01 * MB
    assert 0 < estimate_size(node) < 1000


def test_program_objects_are_not_counted_as_data() -> None:
    # A value referring to its class, a function or a module does not own them.
    @dataclasses.dataclass
    class Holder:
        handler: object

    assert estimate_size(Holder(os)) < 200
    assert estimate_size(Holder(estimate_size)) < 200


# -- bytes-like, memoryview, numpy ---------------------------------------------------------------


def test_a_memoryview_counts_the_buffer_it_keeps_alive() -> None:
    source = payload()
    assert estimate_size(memoryview(source)) >= MB
    # A slice keeps the whole source alive: the whole source counts.
    assert estimate_size(memoryview(source)[:10]) >= MB
    # The view and its source in one value: the source once.
    assert estimate_size({"bytes": source, "view": memoryview(source)}) < 1.01 * MB
    assert estimate_size(memoryview(bytearray(MB))) >= MB
    assert estimate_size(memoryview(array.array("d", bytes(MB)))) >= MB


def test_a_memoryview_of_an_opaque_source_counts_the_bytes_it_shows() -> None:
    mapped = mmap.mmap(-1, MB)
    view = memoryview(mapped)
    try:
        assert MB <= estimate_size(view) < 1.01 * MB
    finally:
        view.release()
        mapped.close()
    assert 0 < estimate_size(view) < 1000  # released: it holds nothing any more


def test_numpy_arrays_count_their_data_and_a_view_its_base() -> None:
    data = np.zeros(MB, dtype=np.uint8)
    assert estimate_size(data) >= MB
    assert estimate_size(data[:10]) >= MB
    assert estimate_size({"data": data, "head": data[:10]}) < 1.01 * MB
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = payload(), payload()
    assert estimate_size(objects) >= 2 * MB


def test_the_estimate_does_not_import_numpy() -> None:
    code = (
        "import sys; from rgruntime.sizing import estimate_size; "
        "estimate_size({'a': [memoryview(b'x'), object()]}); "
        "assert 'numpy' not in sys.modules, 'numpy was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- objects -------------------------------------------------------------------------------------


@dataclasses.dataclass
class DataRecord:
    body: bytes
    note: str = "n"


@dataclasses.dataclass(slots=True, frozen=True)
class SlottedDataRecord:
    body: bytes


@attrs.define
class AttrsRecord:
    body: bytes


@attrs.define(slots=False)
class AttrsDictRecord:
    body: bytes


class PydanticRecord(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    body: bytes
    _private: bytes = pydantic.PrivateAttr(default=b"")


class Plain:
    def __init__(self, body: bytes) -> None:
        self.body = body


class Slotted:
    __slots__ = ("__body",)  # name-mangled slot

    def __init__(self, body: bytes) -> None:
        self.__body = body


@pytest.mark.parametrize(
    "make",
    [
        DataRecord,
        SlottedDataRecord,
        AttrsRecord,
        AttrsDictRecord,
        lambda body: PydanticRecord(body=body),
        Plain,
        Slotted,
    ],
)
def test_objects_are_counted_by_their_fields(make: Callable[[bytes], object]) -> None:
    assert estimate_size(make(payload())) >= MB


def test_pydantic_extra_and_private_attributes_are_counted() -> None:
    record = PydanticRecord(body=b"", extra_field=payload())
    assert estimate_size(record) >= MB
    record = PydanticRecord(body=b"")
    record._private = payload()
    assert estimate_size(record) >= MB


# -- hostile objects -----------------------------------------------------------------------------


class RaisingGetattr:
    __slots__ = ("held",)

    def __getattr__(self, name: str) -> Any:
        raise KeyError(name)


class NegativeSizeof:
    def __sizeof__(self) -> int:
        return -5


class HugeSizeof:
    def __sizeof__(self) -> int:
        return 10**30


class ImplausibleSizeof:
    def __sizeof__(self) -> int:
        return 1 << 60


class FloatSizeof:
    def __sizeof__(self) -> Any:
        return 1.5


class RaisingSizeof:
    def __sizeof__(self) -> int:
        raise RuntimeError("no size")


class LyingList(list[Any]):
    def __len__(self) -> int:
        return -1  # noqa: PLE0303 (the lie is what is tested)

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iteration")


class RaisingDict(dict[Any, Any]):
    def keys(self) -> Any:
        raise RuntimeError("no keys")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iteration")


class RaisingProperties:
    def __init__(self) -> None:
        self.held = b""

    @property
    def broken(self) -> bytes:
        raise RuntimeError("property")

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("__class__")

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")


class UnhashableMeta(type):
    def __hash__(cls) -> int:
        raise RuntimeError("a class that cannot be hashed")

    def __eq__(cls, other: object) -> bool:
        raise RuntimeError("a class that cannot be compared")

    @property
    def __flags__(cls) -> int:  # type: ignore[override]
        raise RuntimeError("no flags")


class UnhashableClass(metaclass=UnhashableMeta):
    def __init__(self, held: bytes) -> None:
        self.held = held


def hostile_objects() -> list[object]:
    slotted = RaisingGetattr()
    slotted.held = payload()
    with_properties = RaisingProperties()
    object.__setattr__(with_properties, "held", payload())
    released = memoryview(b"abc")
    released.release()
    return [
        slotted,
        NegativeSizeof(),
        HugeSizeof(),
        ImplausibleSizeof(),
        FloatSizeof(),
        RaisingSizeof(),
        LyingList([payload()]),
        RaisingDict({"a": payload()}),
        with_properties,
        UnhashableClass(payload()),
        released,
    ]


HOSTILE = hostile_objects()


@pytest.mark.parametrize(
    "hostile", [pytest.param(hostile, id=type(hostile).__name__) for hostile in HOSTILE]
)
def test_a_hostile_object_never_raises(hostile: object) -> None:
    for value in (hostile, [hostile], {"nested": {"deeper": hostile}}):
        size = estimate_size(value)
        assert type(size) is int
        assert 0 < size < 1 << 48
    weight = weigh("key", hostile, None)
    assert weight >= ENTRY_OVERHEAD


def test_what_a_hostile_object_holds_is_still_counted() -> None:
    holding = (RaisingGetattr, LyingList, RaisingDict, RaisingProperties, UnhashableClass)
    for hostile in HOSTILE:
        if any(type(hostile) is kind for kind in holding):
            assert estimate_size(hostile) >= MB, type(hostile)


# -- the walking budget ------------------------------------------------------------------------


def test_past_the_object_cap_the_rest_counts_at_the_mean_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strings = [f"{index:0100d}" for index in range(10_000)]  # 149 B each
    exact = estimate_size(strings)
    monkeypatch.setattr(sizing, "MAX_WALK_OBJECTS", 1000)
    capped = estimate_size(strings)
    assert 0.5 * exact <= capped <= 2 * exact
    nested: object = payload()
    for _ in range(5000):
        nested = [nested]
    assert estimate_size(nested) > 0  # stops at the cap, counts the rest, never raises


# -- Hypothesis ---------------------------------------------------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children)
        | st.dictionaries(st.text(), children)
        | st.tuples(children, children)
        | st.builds(collections.deque, st.lists(children))
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_the_estimate_never_raises_and_counts_at_least_the_top_object(value: Any) -> None:
    size = estimate_size(value)
    assert type(size) is int
    assert size >= sys.getsizeof(value)


@settings(max_examples=100, deadline=None)
@given(json_like, st.integers(0, len(HOSTILE) - 1))
def test_hostile_objects_inside_data_never_raise(value: Any, which: int) -> None:
    hostile = HOSTILE[which]  # drawn by index: Hypothesis itself would hash and repr it
    size = estimate_size([value, {"h": hostile}, (hostile, value)])
    assert type(size) is int
    assert size >= 0


# -- the estimate against traced memory ----------------------------------------------------------


def _many_strings(count: int, rng: random.Random) -> list[Any]:
    return [rng.randbytes(512).hex() for _ in range(count)]


def _many_bytes(count: int, rng: random.Random) -> list[Any]:
    return [rng.randbytes(rng.randint(16, 16_384)) for _ in range(count)]


def _many_ints(count: int, rng: random.Random) -> list[Any]:
    return [rng.randint(1_000, 1 << 60) for _ in range(count)]


def _many_dicts_of_lists(count: int, rng: random.Random) -> list[Any]:
    return [
        {f"field{field}-{index}": [rng.random() for _ in range(8)] for field in range(4)}
        for index in range(count)
    ]


@pytest.mark.parametrize(
    "build",
    [_many_strings, _many_bytes, _many_ints, _many_dicts_of_lists],
    ids=lambda f: f.__name__,
)
def test_the_estimate_is_close_to_traced_memory(
    build: Callable[[int, random.Random], list[Any]],
) -> None:
    count = 2_000
    rng = random.Random(7)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        values = build(count, rng)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(values)
    finally:
        tracemalloc.stop()
    estimated = sum(estimate_size(value) for value in values)
    assert 0.7 * traced <= estimated <= 1.5 * traced, (estimated, traced)


# -- entry weights -------------------------------------------------------------------------------


def test_the_key_is_counted() -> None:
    big_key = "k" * MB
    assert entry_weight(big_key, 0) >= MB
    assert weigh(big_key, 1, None) >= MB
    assert weigh(big_key, 1, 10) >= MB


def test_an_entry_weighs_its_value_key_and_overhead() -> None:
    key, value = "tool:k0000001", "v" * 200
    expected = sys.getsizeof(value) + sys.getsizeof(key) + ENTRY_OVERHEAD
    assert weigh(key, value, None) == entry_weight(key, estimate_size(value)) == expected


def test_an_explicit_size_below_the_overhead_is_raised_to_it() -> None:
    floor = ENTRY_OVERHEAD + sys.getsizeof("key")
    assert weigh("key", b"x" * MB, 0) == floor
    assert weigh("key", b"", 10) == floor
    assert weigh("key", b"", 10 * MB) == 10 * MB


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10", [1]])
def test_a_bad_explicit_size_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        weigh("key", b"", bad)
    assert raised.value.field == "size"
    assert "whole number of bytes" in str(raised.value)


def _failing_sizer(value: object) -> int:
    raise KeyError("cannot weigh")


@pytest.mark.parametrize(
    ("sizer", "told"),
    [
        (_failing_sizer, "KeyError"),
        (lambda value: -1, "returned -1"),
        (lambda value: 1.5, "returned 1.5"),
        (lambda value: None, "returned None"),
        (lambda value: True, "returned True"),
    ],
)
def test_a_failing_sizer_is_the_callers_error(sizer: Callable[[Any], Any], told: str) -> None:
    value = "v" * MB
    with pytest.raises(InvalidArgumentError) as raised:
        weigh("key", value, None, sizer)
    assert raised.value.field == "size"
    assert raised.value.value is sizer
    message = str(raised.value)
    assert told in message
    assert "sizer" in message
    assert len(message) < 1000  # the value's repr is cut


def test_a_custom_sizer_adds_key_and_overhead() -> None:
    assert weigh("key", object(), None, lambda value: 5) == entry_weight("key", 5)


@pytest.mark.anyio
async def test_entry_overhead_covers_what_a_layer_spends_per_entry(anyio_backend: object) -> None:
    # lfu spends the most per entry (benchmarks/sizing_overhead.py); 20,000 tiny entries.
    entries = 20_000
    per_entry, key_bytes, value_bytes = await measure_entry_overhead(entries, "lfu")
    assert 0.75 * ENTRY_OVERHEAD <= per_entry <= ENTRY_OVERHEAD, per_entry
    # So the weights of tiny-int entries add up to about what the layer holds for them.
    real = per_entry + key_bytes + value_bytes
    weight = ENTRY_OVERHEAD + key_bytes + value_bytes
    assert real <= weight <= 1.25 * real
