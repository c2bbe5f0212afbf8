"""The versioned envelope in which values leave the process, and the codecs of value types.

An entry crosses the wire as one msgpack array::

    ["rge", 1, value, created, ttl, tags, cost, metadata]

``created`` is wall-clock time (seconds since the epoch: other processes read it), ``ttl`` seconds
or nil, ``tags`` a sorted list of strings, ``cost`` what recomputing the value costs, ``metadata`` a
map of JSON-like data (token usage, model name...).

Values are JSON-like data (nil, booleans, integers of any size, floats, strings, bytes, lists,
tuples, maps with string or integer keys) and, through msgpack extension types, instances of types
with a registered :class:`Codec` (dataclasses, attrs classes, pydantic models, or any type given an
encode/decode pair). Nothing is unpickled by default: the optional :class:`SignedPickle` fallback
signs each pickle with HMAC-SHA256 under a secret and refuses, before unpickling, any payload whose
signature does not match (``hmac.compare_digest``).

:meth:`Serializer.encode` raises :class:`~rgruntime.InvalidArgumentError` naming where in the value
the offending object sits, before anything is stored. :meth:`Serializer.decode` raises only
:class:`~rgruntime.stores.UndecodableEntryError` for a payload it cannot trust (corrupt, foreign,
truncated, another format version, unsigned): the layer counts it as a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs
import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]

from rgruntime.errors import InvalidArgumentError
from rgruntime.stores.errors import UndecodableEntryError
from rgruntime.stores.validation import brief

__all__ = [
    "ENVELOPE_VERSION",
    "Codec",
    "CodecRegistry",
    "Envelope",
    "Serializer",
    "SignedPickle",
    "attrs_codec",
    "dataclass_codec",
    "pydantic_codec",
]

T = TypeVar("T")

_MAGIC: Final = "rge"
#: Bumped when the layout of the envelope array changes; older or newer versions decode as misses.
ENVELOPE_VERSION: Final = 1

# msgpack extension type codes of this format.
_EXT_TUPLE: Final = 1
_EXT_CODEC: Final = 2
_EXT_BIGINT: Final = 3
_EXT_PICKLE: Final = 4

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
#: Deeper values are refused at encode time (and cannot come back: msgpack's own limit is lower
#: than Python's recursion limit only if we keep it so).
MAX_DEPTH: Final = 64
_MIN_SECRET_BYTES: Final = 32
_SIGNATURE_BYTES: Final = 32

_VALUE_ACCEPTED = (
    "JSON-like data (None, bool, int, float, str, bytes, list, tuple, dict with str keys or "
    "64-bit int keys) "
    f"nested at most {MAX_DEPTH} deep, or an instance of a type with a registered codec "
    "(register_dataclass / register_attrs / register_pydantic), or enable SignedPickle"
)


@attrs.frozen
class Codec(Generic[T]):
    """How instances of exactly ``type`` become JSON-like data and back.

    ``name`` is written into every payload: keep it stable across releases (the default is the
    class's module and qualified name). ``to_data`` may return values that themselves need codecs.
    """

    name: str
    type: type[T]
    to_data: Callable[[T], Any]
    from_data: Callable[[Any], T]


def dataclass_codec(cls: type[T], name: str | None = None) -> Codec[T]:
    """A codec for a dataclass: its init fields as a map, the class called with them back."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise InvalidArgumentError("cls", cls, "a dataclass type")
    fields = tuple(field.name for field in dataclasses.fields(cls) if field.init)
    return Codec(
        name or _qualified(cls),
        cls,
        lambda value: {field: getattr(value, field) for field in fields},
        lambda data: cls(**data),
    )


def attrs_codec(cls: type[T], name: str | None = None) -> Codec[T]:
    """A codec for an attrs class: its init fields as a map (by init alias), the class back."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise InvalidArgumentError("cls", cls, "an attrs class")
    fields = tuple((field.name, field.alias) for field in attrs.fields(cls) if field.init)
    return Codec(
        name or _qualified(cls),
        cls,  # type: ignore[arg-type]
        lambda value: {alias: getattr(value, field) for field, alias in fields},
        lambda data: cls(**data),  # type: ignore[arg-type,return-value]
    )


def pydantic_codec(cls: type[T], name: str | None = None) -> Codec[T]:
    """A codec for a pydantic model: ``model_dump(mode="json")`` and ``model_validate`` back."""
    if not (isinstance(cls, type) and hasattr(cls, "model_validate")):
        raise InvalidArgumentError("cls", cls, "a pydantic BaseModel subclass")
    return Codec(
        name or _qualified(cls),
        cls,
        lambda value: value.model_dump(mode="json"),  # type: ignore[attr-defined]
        cls.model_validate,  # type: ignore[attr-defined]
    )


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class CodecRegistry:
    """The codecs a serializer knows, by exact type and by name.

    Lookup is by exact type: a subclass is not silently encoded as its base (it would come back
    as the base). Every process that reads a store must register the same names.
    """

    __slots__ = ("_by_name", "_by_type")

    def __init__(self, codecs: Iterable[Codec[Any]] = ()) -> None:
        self._by_name: dict[str, Codec[Any]] = {}
        self._by_type: dict[type, Codec[Any]] = {}
        for codec in codecs:
            self.register(codec)

    def register(self, codec: Codec[Any]) -> None:
        if not isinstance(codec.name, str) or not codec.name:
            raise InvalidArgumentError("codec.name", codec.name, "a non-empty string")
        known = self._by_name.get(codec.name)
        if known is not None and known.type is not codec.type:
            raise InvalidArgumentError(
                "codec.name", codec.name, f"a name not already used (it encodes {known.type!r})"
            )
        self._by_name[codec.name] = codec
        self._by_type[codec.type] = codec

    def register_dataclass(self, cls: type, name: str | None = None) -> None:
        self.register(dataclass_codec(cls, name))

    def register_attrs(self, cls: type, name: str | None = None) -> None:
        self.register(attrs_codec(cls, name))

    def register_pydantic(self, cls: type, name: str | None = None) -> None:
        self.register(pydantic_codec(cls, name))

    def for_type(self, cls: type) -> Codec[Any] | None:
        return self._by_type.get(cls)

    def for_name(self, name: str) -> Codec[Any] | None:
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)


class SignedPickle:
    """The opt-in fallback for values nothing else encodes: pickle, signed with HMAC-SHA256.

    Only a process holding ``secret`` can write a payload that another will unpickle; a payload
    whose signature does not verify is never passed to ``pickle.loads``. The secret must be at
    least 32 bytes (a shared server's writers are as trusted as this secret is kept).
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
            raise InvalidArgumentError(
                "pickle_secret",
                "<hidden>" if isinstance(secret, bytes) else secret,
                f"bytes of at least {_MIN_SECRET_BYTES} (os.urandom(32), kept secret)",
            )
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def dumps(self, value: object) -> bytes:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return self._sign(payload) + payload

    def loads(self, data: bytes) -> Any:
        signature, payload = data[:_SIGNATURE_BYTES], data[_SIGNATURE_BYTES:]
        if len(signature) != _SIGNATURE_BYTES or not hmac.compare_digest(
            signature, self._sign(payload)
        ):
            raise UndecodableEntryError("unsigned", "a pickled value with a wrong signature")
        return pickle.loads(payload)


@attrs.frozen(kw_only=True)
class Envelope:
    """One entry as it is stored remotely: the value and what the layer knows about it."""

    value: Any
    #: Wall-clock time of the write (``time.time()``): comparable across processes.
    created: float
    ttl: float | None = None
    tags: frozenset[str] = frozenset()
    cost: float = 1.0
    #: JSON-like extras: token usage, the model that produced the value...
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def expired(self, now: float) -> bool:
        """Whether the entry's TTL has run out at wall-clock time ``now``."""
        return self.ttl is not None and now >= self.created + self.ttl


def _check_number(
    value: object, field: str, *, allow_none: bool = False, positive: bool = False
) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (positive and value <= 0)
    ):
        accepted = ("a positive" if positive else "a") + " finite number"
        raise InvalidArgumentError(
            field, brief(value), accepted + (" or None" if allow_none else "")
        )


class Serializer:
    """Encodes :class:`Envelope` objects to bytes and decodes them back, safely.

    >>> serializer = Serializer()
    >>> data = serializer.encode(Envelope(value={"answer": 42}, created=0.0))
    >>> serializer.decode(data).value
    {'answer': 42}
    """

    __slots__ = ("_codecs", "_pickle")

    def __init__(
        self, codecs: CodecRegistry | None = None, *, pickle_secret: bytes | None = None
    ) -> None:
        self._codecs = codecs if codecs is not None else CodecRegistry()
        self._pickle = None if pickle_secret is None else SignedPickle(pickle_secret)

    @property
    def codecs(self) -> CodecRegistry:
        return self._codecs

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, envelope: Envelope) -> bytes:
        """The envelope's bytes; :class:`~rgruntime.InvalidArgumentError` if it cannot be stored."""
        _check_number(envelope.created, "created")
        _check_number(envelope.ttl, "ttl", allow_none=True, positive=True)
        _check_number(envelope.cost, "cost", positive=True)
        tags = envelope.tags
        if isinstance(tags, str | bytes) or not all(isinstance(tag, str) for tag in tags):
            raise InvalidArgumentError("tags", brief(tags), "a collection of strings")
        if not isinstance(envelope.metadata, Mapping):
            raise InvalidArgumentError(
                "metadata", brief(envelope.metadata), "a dict of JSON-like data"
            )
        frame = [
            _MAGIC,
            ENVELOPE_VERSION,
            self._to_wire(envelope.value, "value", 0),
            float(envelope.created),
            None if envelope.ttl is None else float(envelope.ttl),
            sorted(tags),
            float(envelope.cost),
            self._to_wire(dict(envelope.metadata), "metadata", 0),
        ]
        return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]

    def _to_wire(self, value: Any, where: str, depth: int) -> Any:
        """``value`` as msgpack-native data; our extension types for the rest."""
        if depth > MAX_DEPTH:
            raise InvalidArgumentError(where, brief(value), _VALUE_ACCEPTED)
        kind = type(value)
        if value is None or kind in (bool, float, str, bytes):
            return value
        if kind is int:
            # Beyond msgpack's 64 bits: the decimal digits in an extension type.
            in_range = _INT_MIN <= value <= _INT_MAX
            return value if in_range else msgpack.ExtType(_EXT_BIGINT, str(value).encode())
        if kind in (list, tuple, dict):
            return self._container_to_wire(value, where, depth)
        return self._object_to_wire(value, where, depth)

    def _container_to_wire(self, value: Any, where: str, depth: int) -> Any:
        if type(value) is list:
            return [self._to_wire(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        if type(value) is tuple:
            items = [
                self._to_wire(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)
            ]
            return msgpack.ExtType(_EXT_TUPLE, self._pack(items))
        wire = {}
        for key, item in value.items():
            if type(key) is not str and not (type(key) is int and _INT_MIN <= key <= _INT_MAX):
                raise InvalidArgumentError(f"{where} key", brief(key), _VALUE_ACCEPTED)
            wire[key] = self._to_wire(item, f"{where}[{key!r}]", depth + 1)
        return wire

    def _object_to_wire(self, value: Any, where: str, depth: int) -> Any:
        """A value that is not JSON-like: its codec, else the signed pickle, else refused."""
        codec = self._codecs.for_type(type(value))
        if codec is not None:
            try:
                data = codec.to_data(value)
            except Exception as error:
                raise InvalidArgumentError(
                    where, brief(value), f"a value codec {codec.name!r} can encode ({error})"
                ) from error
            inner = [codec.name, self._to_wire(data, f"{where}<{codec.name}>", depth + 1)]
            return msgpack.ExtType(_EXT_CODEC, self._pack(inner))
        if self._pickle is not None:
            try:
                return msgpack.ExtType(_EXT_PICKLE, self._pickle.dumps(value))
            except Exception as error:
                raise InvalidArgumentError(
                    where, brief(value), f"a picklable value ({error})"
                ) from error
        raise InvalidArgumentError(where, brief(value), _VALUE_ACCEPTED)

    @staticmethod
    def _pack(data: Any) -> bytes:
        return msgpack.packb(data, use_bin_type=True)  # type: ignore[no-any-return]

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, data: bytes) -> Envelope:
        """The envelope in ``data``; :class:`UndecodableEntryError` for anything untrustworthy."""
        try:
            frame = self._unpack(data)
        except UndecodableEntryError:
            raise
        except Exception as error:
            # Truncated, trailing bytes, bad extension data, too deep: whatever msgpack or a codec
            # raised, the payload is not one we wrote.
            raise UndecodableEntryError("corrupt", f"{type(error).__name__}: {error}") from None
        return _envelope_from_frame(frame)

    def _unpack(self, data: bytes) -> Any:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UndecodableEntryError("corrupt", f"expected bytes, got {type(data).__name__}")
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,  # integer keys are allowed values; checked by _check_keys
            ext_hook=self._from_ext,
        )

    def _from_ext(self, code: int, data: bytes) -> Any:
        if code == _EXT_TUPLE:
            items = self._unpack(data)
            if not isinstance(items, list):
                raise UndecodableEntryError("corrupt", "a tuple that is not a list of items")
            return tuple(items)
        if code == _EXT_BIGINT:
            text = data.decode("ascii")
            if not text.lstrip("-").isdigit() or len(text) > 4300:
                raise UndecodableEntryError("corrupt", "a malformed big integer")
            return int(text)
        if code == _EXT_CODEC:
            return self._from_codec(self._unpack(data))
        if code == _EXT_PICKLE:
            if self._pickle is None:
                raise UndecodableEntryError(
                    "unsigned", "a pickled value, and no pickle_secret to verify it"
                )
            return self._pickle.loads(data)
        raise UndecodableEntryError("foreign", f"unknown msgpack extension type {code}")

    def _from_codec(self, inner: Any) -> Any:
        if not (isinstance(inner, list) and len(inner) == 2 and isinstance(inner[0], str)):
            raise UndecodableEntryError("corrupt", "a malformed codec value")
        codec = self._codecs.for_name(inner[0])
        if codec is None:
            raise UndecodableEntryError("codec", f"no codec registered as {inner[0]!r}")
        try:
            return codec.from_data(inner[1])
        except Exception as error:
            raise UndecodableEntryError(
                "codec", f"codec {codec.name!r} rejected its data: {type(error).__name__}"
            ) from None


_FRAME_LENGTH: Final = 8


def _envelope_from_frame(frame: Any) -> Envelope:
    if not (isinstance(frame, list) and len(frame) >= 2 and frame[0] == _MAGIC):
        raise UndecodableEntryError("foreign", "not an rgruntime envelope")
    if frame[1] != ENVELOPE_VERSION:
        raise UndecodableEntryError("version", f"envelope version {frame[1]!r}")
    if len(frame) != _FRAME_LENGTH:
        raise UndecodableEntryError("corrupt", f"an envelope of {len(frame)} fields")
    _, _, value, created, ttl, tags, cost, metadata = frame
    # Exact types (bool is not a number here); this runs on every read from a store.
    if not (
        type(created) in _NUMBERS
        and (ttl is None or type(ttl) in _NUMBERS)
        and type(cost) in _NUMBERS
        and type(tags) is list
        and (not tags or all(type(tag) is str for tag in tags))
        and type(metadata) is dict
    ):
        raise UndecodableEntryError("corrupt", "envelope fields of the wrong types")
    return Envelope(
        value=value,
        created=float(created),
        ttl=None if ttl is None else float(ttl),
        tags=frozenset(tags),
        cost=float(cost),
        metadata=metadata,
    )


_NUMBERS: Final = (int, float)
