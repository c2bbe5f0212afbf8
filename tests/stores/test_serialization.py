"""The envelope: round trips (Hypothesis), codecs, the signed pickle, and decoding hostile bytes.

Decoding must end in an envelope or an UndecodableEntryError, whatever the bytes: never another
exception, never code execution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pickle
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgruntime import InvalidArgumentError
from rgruntime.stores import (
    ENVELOPE_VERSION,
    CodecRegistry,
    Envelope,
    Serializer,
    UndecodableEntryError,
)

SECRET = b"s" * 32


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    label: str = ""


@attrs.frozen
class Usage:
    prompt_tokens: int
    completion_tokens: int
    _private: str = attrs.field(default="p", alias="private")


class Answer(pydantic.BaseModel):
    text: str
    score: float
    tags: list[str] = []


def registry() -> CodecRegistry:
    codecs = CodecRegistry()
    codecs.register_dataclass(Point)
    codecs.register_attrs(Usage)
    codecs.register_pydantic(Answer)
    return codecs


SERIALIZER = Serializer(registry())

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.builds(Point, st.integers(), st.floats(allow_nan=False), st.text())
    | st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6), private=st.text())
    | st.builds(Answer, text=st.text(), score=st.floats(allow_nan=False, allow_infinity=False))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text() | st.integers(-(2**63), 2**64 - 1), inner, max_size=4)
    ),
    max_leaves=20,
)
TAGS = st.frozensets(st.text(min_size=1), max_size=4)
ENVELOPES = st.builds(
    Envelope,
    value=VALUES,
    created=st.floats(0, 4e9),
    ttl=st.none() | st.floats(0.001, 1e7),
    tags=TAGS,
    cost=st.floats(0.001, 1e6),
    metadata=st.dictionaries(st.text(), st.integers() | st.text(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(ENVELOPES)
def test_round_trip(envelope: Envelope) -> None:
    decoded = SERIALIZER.decode(SERIALIZER.encode(envelope))
    assert decoded == envelope
    assert _types(decoded.value) == _types(envelope.value)


def _types(value: Any) -> Any:
    """The shape of a value with its container types (== alone says (1,) == [1] is False, but
    nests inside dicts the same way): tuples must come back as tuples."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_types(item) for item in value])
    if isinstance(value, dict):
        return ("dict", {key: _types(item) for key, item in value.items()})
    return type(value).__name__


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_only_as_envelopes_or_misses(data: bytes) -> None:
    with contextlib.suppress(UndecodableEntryError):
        SERIALIZER.decode(data)


@settings(max_examples=300, deadline=None)
@given(ENVELOPES, st.data())
def test_damaged_payloads_decode_only_as_envelopes_or_misses(
    envelope: Envelope, data: st.DataObject
) -> None:
    payload = bytearray(SERIALIZER.encode(envelope))
    damage = data.draw(st.sampled_from(["truncate", "flip", "append"]))
    if damage == "truncate":
        payload = payload[: data.draw(st.integers(0, len(payload) - 1))]
    elif damage == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(payload) - 1))
            payload[index] ^= data.draw(st.integers(1, 255))
    else:
        payload += data.draw(st.binary(min_size=1, max_size=8))
    with contextlib.suppress(UndecodableEntryError):
        SERIALIZER.decode(bytes(payload))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "corrupt"),
        (b"\xc1", "corrupt"),
        (msgpack.packb({"value": 1}), "foreign"),
        (msgpack.packb(["rge", ENVELOPE_VERSION + 1, 1, 0.0, None, [], 1.0, {}]), "version"),
        (msgpack.packb(["rge", ENVELOPE_VERSION, 1, 0.0, None, [], 1.0]), "corrupt"),
        (msgpack.packb(["rge", ENVELOPE_VERSION, 1, "now", None, [], 1.0, {}]), "corrupt"),
        (msgpack.packb(["rge", ENVELOPE_VERSION, 1, 0.0, None, [7], 1.0, {}]), "corrupt"),
        (
            msgpack.packb(
                ["rge", ENVELOPE_VERSION, msgpack.ExtType(99, b""), 0.0, None, [], 1.0, {}]
            ),
            "foreign",
        ),
        (SERIALIZER.encode(Envelope(value=1, created=0.0)) + b"\x00", "corrupt"),
    ],
)
def test_undecodable_payloads_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(UndecodableEntryError) as caught:
        SERIALIZER.decode(payload)
    assert caught.value.reason == reason


def test_unknown_codec_is_a_miss_not_an_error() -> None:
    data = SERIALIZER.encode(Envelope(value=Point(1, 2.0), created=0.0))
    with pytest.raises(UndecodableEntryError) as caught:
        Serializer().decode(data)
    assert caught.value.reason == "codec"


def test_codec_rejecting_its_data_is_a_miss() -> None:
    other = CodecRegistry()

    # Same name, a class that cannot take the fields.
    @dataclasses.dataclass
    class Narrow:
        x: int

    other.register_dataclass(Narrow, name=f"{Point.__module__}.{Point.__qualname__}")
    data = SERIALIZER.encode(Envelope(value=Point(1, 2.0), created=0.0))
    with pytest.raises(UndecodableEntryError) as caught:
        Serializer(other).decode(data)
    assert caught.value.reason == "codec"


class _Exploit:
    """Unpickling this creates a file: the proof that a payload was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickle_is_refused_without_the_secret(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    signed = Serializer(pickle_secret=SECRET)
    data = signed.encode(Envelope(value=_Exploit(marker), created=0.0))
    assert not marker.exists()
    for reader in (Serializer(), Serializer(pickle_secret=b"x" * 32)):
        with pytest.raises(UndecodableEntryError) as caught:
            reader.decode(data)
        assert caught.value.reason == "unsigned"
    assert not marker.exists()


def test_forged_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    forged_value = msgpack.ExtType(4, b"\x00" * 32 + pickle.dumps(_Exploit(marker)))
    forged = msgpack.packb(["rge", ENVELOPE_VERSION, forged_value, 0.0, None, [], 1.0, {}])
    with pytest.raises(UndecodableEntryError) as caught:
        Serializer(pickle_secret=SECRET).decode(forged)
    assert caught.value.reason == "unsigned"
    assert not marker.exists()


def test_signed_pickle_round_trips_for_its_secret() -> None:
    signed = Serializer(pickle_secret=SECRET)
    value = {"when": complex(1, 2), "set": frozenset({1, 2})}
    assert signed.decode(signed.encode(Envelope(value=value, created=0.0))).value == value


def test_short_secret_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="pickle_secret") as caught:
        Serializer(pickle_secret=b"short")
    assert "short" not in str(caught.value)  # the secret is not echoed


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (object(), "value"),
        ({"a": [1, {2, 3}]}, "value['a'][1]"),
        ({(1, 2): "tuple key"}, "value key"),
        ({2**64: "too big a key"}, "value key"),
        ([complex(1, 2)], "value[0]"),
    ],
)
def test_unencodable_values_are_refused_naming_where(value: object, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SERIALIZER.encode(Envelope(value=value, created=0.0))
    assert caught.value.field == where
    assert "registered codec" in caught.value.accepted


def test_too_deep_values_are_refused() -> None:
    value: Any = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(InvalidArgumentError, match="deep"):
        SERIALIZER.encode(Envelope(value=value, created=0.0))


def test_huge_values_are_named_briefly() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SERIALIZER.encode(Envelope(value={"k": [object()] * 10_000}, created=0.0))
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ttl": -1.0}, "ttl"),
        ({"ttl": math.inf}, "ttl"),
        ({"created": math.nan}, "created"),
        ({"cost": True}, "cost"),
        ({"tags": "products"}, "tags"),
        ({"metadata": [1]}, "metadata"),
    ],
)
def test_bad_envelope_fields(fields: dict[str, Any], field: str) -> None:
    envelope = Envelope(**{"value": 1, "created": 0.0, **fields})
    with pytest.raises(InvalidArgumentError) as caught:
        SERIALIZER.encode(envelope)
    assert caught.value.field == field


def test_codec_names_are_unique() -> None:
    codecs = registry()
    with pytest.raises(InvalidArgumentError, match=r"codec\.name"):
        codecs.register_dataclass(
            dataclasses.make_dataclass("Other", ["a"]),
            name=f"{Point.__module__}.{Point.__qualname__}",
        )
    with pytest.raises(InvalidArgumentError, match="dataclass"):
        codecs.register_dataclass(Usage)


def test_expiry_is_wall_clock() -> None:
    envelope = Envelope(value=1, created=100.0, ttl=10.0)
    assert not envelope.expired(109.9)
    assert envelope.expired(110.0)
    assert not Envelope(value=1, created=100.0).expired(1e12)
