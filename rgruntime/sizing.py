"""What an entry weighs against a ``max_size`` budget, in bytes of memory.

An entry's weight is :func:`weigh`: the value's size (``size=`` given to the write, else the
layer's sizer, by default :func:`estimate_size`), plus the key's ``sys.getsizeof``, plus
:data:`ENTRY_OVERHEAD`, what the layer itself spends per entry. ``docs/configuration.md`` (Entry
sizes) has the rules; this module is pure and synchronous: the layer calls it on every write.

:func:`estimate_size` walks everything the value references, with an explicit stack (no
recursion, so no ``RecursionError`` and no depth limit a large payload can hide under), counting
each object once by identity. It finds what an object holds with :func:`gc.get_referents`, the
same traversal the garbage collector uses, so it reaches into every container kind (dict, list,
tuple, set, deque, ``collections`` and ``collections.abc`` classes, attrs, dataclass and pydantic
objects, ``__dict__`` and ``__slots__``) without running any of the object's own Python code:
no ``__getattr__``, property, ``__iter__`` or ``__len__`` is called, so none can lie or raise.
The one call into the object is ``sys.getsizeof`` (its ``__sizeof__``); when that raises or
answers something impossible (negative, 256 TiB or more), the object counts its C-level size
(``object.__sizeof__``) instead. The estimate never raises and is a non-negative ``int``.
"""

from __future__ import annotations

import array
import gc
import itertools
import reprlib
import sys
import types
from collections.abc import Callable, Collection
from typing import Any, Final

from rgruntime.errors import InvalidArgumentError

__all__ = ["ENTRY_OVERHEAD", "MAX_WALK_OBJECTS", "entry_weight", "estimate_size", "weigh"]

#: Bytes the layer spends per entry beyond its key and value: the ``Entry`` object and its
#: slots, its slot in the entry map, the timer-index tuple and its deadline, the policy's record
#: of the key, the key index. Measured with ``python -m benchmarks.sizing_overhead`` (tracemalloc
#: growth over 200,000 ``set_nowait`` writes of small ints, divided by the entries): lru 384.1,
#: ttl 487.3, cost 563.3, lfu and tiered 593.1 B on CPython 3.11 (December 2026). One constant
#: for every strategy, so the largest, rounded up: re-measure when the layer's internals change.
ENTRY_OVERHEAD: Final = 600

#: The most objects one :func:`estimate_size` call visits (about half a second of work). Past
#: it, every object found but not visited counts at the mean size of those visited: an estimate,
#: not a measure; a value that large should come with ``size=``.
MAX_WALK_OBJECTS: Final = 1_000_000

# A ``__sizeof__`` at or above this (256 TiB) is taken for a lie, not a size.
_IMPLAUSIBLE_SIZE: Final = 1 << 48
# Exact types whose getsizeof is their whole footprint (they reference nothing that counts).
# Looked up by id: hashing a class runs its metaclass's __hash__, which may raise.
_ATOM_IDS: Final = frozenset(
    map(id, (str, bytes, bytearray, int, float, bool, complex, type(None)))
)
# The program, not data: a value referring to its class, a function or a module does not own
# them (they live as long as the program), so they count nothing and are not entered.
_PROGRAM: Final = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)
# Objects whose getsizeof already includes the buffer a memoryview of them exposes.
_BUFFER_OWNERS: Final = (bytes, bytearray, array.array, memoryview)
_REPR_LIMIT: Final = 200
_getsizeof: Final = sys.getsizeof


def estimate_size(value: Any) -> int:
    """Bytes of memory ``value`` holds, counting what it references once (see the module doc)."""
    kind = type(value)
    if kind is str or kind is bytes or id(kind) in _ATOM_IDS:
        return _getsizeof(value)  # the common case (a str, bytes): one call
    try:
        return _walk(value)
    except Exception:  # _walk guards each object; this guards the walk itself (MemoryError...)
        return _own_size(value)


def entry_weight(key: str, value_size: int) -> int:
    """An entry's weight: its value's size, its key's and the layer's :data:`ENTRY_OVERHEAD`."""
    return value_size + _key_size(key) + ENTRY_OVERHEAD


def weigh(
    key: str,
    value: Any,
    size: int | None,
    sizer: Callable[[Any], int] = estimate_size,
) -> int:
    """The weight a write of ``key`` → ``value`` adds to the layer's ``max_size`` budget.

    An explicit ``size`` is the entry's whole weight, raised to :func:`entry_weight` of a
    zero-byte value when below it (no entry costs less than its key and the layer's overhead).
    Without ``size``, the entry weighs ``sizer(value)`` plus its key and the overhead. A bad
    ``size``, or a sizer that raises or returns anything but a whole number of bytes, raises
    :class:`~rgruntime.errors.InvalidArgumentError` (the default sizer never does).
    """
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgumentError("size", size, "a whole number of bytes, 0 or more")
        return max(size, entry_weight(key, 0))
    if sizer is estimate_size:
        # Inlined key size for the common write (a str key): this runs on every write.
        key_size = _getsizeof(key) if type(key) is str else estimate_size(key)
        return estimate_size(value) + key_size + ENTRY_OVERHEAD
    try:
        measured = sizer(value)
    except Exception as error:
        raise InvalidArgumentError(
            "size", sizer, f"a sizer that weighs {_cut_repr(value)}; it raised {error!r}"
        ) from error
    if isinstance(measured, bool) or not isinstance(measured, int) or measured < 0:
        raise InvalidArgumentError(
            "size",
            sizer,
            f"a sizer returning a whole number of bytes, 0 or more, for {_cut_repr(value)}; "
            f"it returned {_cut_repr(measured)}",
        )
    return entry_weight(key, measured)


def _key_size(key: str) -> int:
    return _getsizeof(key) if type(key) is str else estimate_size(key)


def _walk(root: Any) -> int:
    """Sum the sizes of the objects reachable from ``root``, each once (see the module doc)."""
    seen: set[int] = set()
    # Objects the walk itself created (a numpy array's element list): kept alive until the end so
    # that no object visited later can reuse their ids and be taken for one already seen.
    keep: list[Any] = []
    stack = [root]
    total = visited = left_out = 0
    getsizeof = _getsizeof  # a local: the loop runs once per object
    while stack:
        item = stack.pop()
        identity = id(item)
        if identity in seen:
            continue
        seen.add(identity)
        visited += 1
        kind = type(item)
        room = MAX_WALK_OBJECTS - visited - len(stack)
        try:
            if kind is str or id(kind) in _ATOM_IDS:
                total += getsizeof(item)
            elif kind is dict:
                total += getsizeof(item)
                # Not get_referents: a dict's traversal skips str keys (they cannot form cycles).
                if 2 * len(item) <= room:
                    stack += item
                    stack += item.values()
                else:
                    left_out += _push(stack, (*item, *item.values()), room)
            elif kind is list or kind is tuple or kind is set or kind is frozenset:
                total += getsizeof(item)
                if len(item) <= room:
                    stack += item
                else:
                    left_out += _push(stack, item, room)
            elif item is root or not issubclass(kind, _PROGRAM):
                total += _own_size(item)
                left_out += _push(stack, _held(item, kind, keep), room)
        except Exception:  # a hostile or broken object: its own size, nothing below it
            total += _own_size(item)
        if visited >= MAX_WALK_OBJECTS:
            # Out of walking budget: what was found but not visited counts at the mean size.
            return total + (len(stack) + left_out) * (total // visited)
    return total + left_out * (total // visited)


def _push(stack: list[Any], children: Collection[Any], room: int) -> int:
    """Push up to ``room`` children; return how many did not fit (they count at the mean size)."""
    count = len(children)
    if count <= room:
        stack.extend(children)
        return 0
    if room > 0:
        stack.extend(itertools.islice(children, room))
        return count - room
    return count


def _held(item: Any, kind: type, keep: list[Any]) -> list[Any]:
    """The objects ``item`` holds, found without running any of its Python code.

    Nothing when even that fails (an ndarray subclass whose ``base`` property raises): the
    object then counts its own size only.
    """
    try:
        held = gc.get_referents(item)  # [] for the types that hold no references
        # issubclass on the type, never isinstance: isinstance would ask the object's __class__.
        if issubclass(kind, dict):  # a subclass (OrderedDict, defaultdict...): str keys too
            held.extend(dict.keys(item))
        elif kind is memoryview:
            held.extend(_memoryview_source(item, keep))
        else:
            numpy = sys.modules.get("numpy")
            if numpy is not None and issubclass(kind, numpy.ndarray):
                held.extend(_array_contents(item, keep))
    except Exception:
        return []
    return held


def _memoryview_source(view: memoryview, keep: list[Any]) -> list[Any]:
    """A view keeps its whole source alive, so the source is what counts (once, if shared).

    Sources whose size Python cannot see (an ``mmap``, an extension's buffer) count as the
    bytes the view exposes instead.
    """
    try:
        source = view.obj
    except ValueError:  # released: it holds nothing any more
        return []
    numpy = sys.modules.get("numpy")
    if issubclass(type(source), _BUFFER_OWNERS) or (
        numpy is not None and issubclass(type(source), numpy.ndarray)
    ):
        return [source]
    stand_in = _Opaque(view.nbytes)
    keep.append(stand_in)
    return [stand_in]


def _array_contents(array_: Any, keep: list[Any]) -> list[Any]:
    """A numpy array's getsizeof counts its data when it owns it; a view holds its base."""
    held: list[Any] = []
    if array_.base is not None:
        held.append(array_.base)
    if array_.dtype.hasobject:  # an object array's data is pointers: what they point at counts
        elements = array_.ravel(order="K").tolist()
        keep.append(elements)
        held.extend(elements)
    return held


class _Opaque:
    """Stands for ``nbytes`` bytes the walk knows of but cannot see as an object."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes

    def __sizeof__(self) -> int:
        return self.nbytes


def _own_size(item: Any) -> int:
    """``sys.getsizeof(item)``, or its C-level size when ``__sizeof__`` raises or lies."""
    try:
        size = sys.getsizeof(item)
    except Exception:
        return _basic_size(item)
    return size if 0 <= size < _IMPLAUSIBLE_SIZE else _basic_size(item)


def _basic_size(item: Any) -> int:
    # Not the type's GC flag: reading __flags__ runs the metaclass's attribute lookup.
    gc_header = 16 if gc.is_tracked(item) else 0
    try:
        return max(0, object.__sizeof__(item)) + gc_header
    except Exception:
        return gc_header + 16


def _cut_repr(value: Any) -> str:
    """A repr of at most 200 characters that never raises."""
    try:
        text = reprlib.repr(value)
    except Exception:
        text = f"<{type(value).__qualname__} object>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."
