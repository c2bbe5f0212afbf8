"""Validation of the arguments of cache operations: keys, loaders, tags, sizes, selections.

Each check raises :class:`~rgruntime.InvalidArgumentError` naming the argument, the value (its
repr cut to 200 characters) and what is accepted, before anything stored is touched. The error is
also a ``TypeError``, which is what a key of the wrong type raised before.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from types import FunctionType, MethodType
from typing import TypeVar, cast

import attrs

from rgruntime.errors import InvalidArgumentError, describe_value
from rgruntime.runtime.indices import TAG_SEPARATOR

__all__ = [
    "Selection",
    "await_loader",
    "check_cost",
    "check_key",
    "check_loader",
    "check_size",
    "check_tags",
    "is_async_callable",
]

T = TypeVar("T")
Loader = Callable[[], Awaitable[object]]

_TAGS_ACCEPTED = (
    "a list of non-empty strings such as ['products', 'products:electronics'] "
    f"(levels separated by {TAG_SEPARATOR!r}, none of them empty)"
)


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str):  # never hashes the key: a list or a dict is refused the same way
        raise InvalidArgumentError(field, key, "a str (keys are strings)")
    return key


_ASYNC_GENERATOR = inspect.CO_ASYNC_GENERATOR

_LOADER_ACCEPTED = (
    "an async callable taking no arguments (an async def function, an object with an async "
    "__call__, or a function returning an awaitable such as lambda: fetch(url))"
)


def check_loader(loader: object, field: str = "loader") -> Loader:
    """``loader`` if it may be a loader; :func:`await_loader` checks what only a call tells.

    Refused at once: what is not callable, an async generator function (calling it gives an
    async iterator, which cannot be awaited) and a plain function or method with a required
    parameter. A plain (sync) function is not refused here: ``lambda: fetch(url)`` returns an
    awaitable and is a good loader, so whether the result can be awaited is checked at the call.
    """
    if not callable(loader) or _cannot_load(loader):
        raise InvalidArgumentError(field, loader, _LOADER_ACCEPTED)
    return cast(Loader, loader)  # the alias: subscripting Callable here would cost 3 µs a call


def _cannot_load(loader: object) -> bool:
    """Whether a plain function or method is an async generator function or has a parameter
    without a default.

    Read from the code object: this runs on every miss, where inspect.signature (15-60 µs) and
    inspect.isasyncgenfunction (about 1 µs) cost too much. Other callables (partials, objects,
    builtins) are left to the call.
    """
    function: object
    if isinstance(loader, MethodType):
        function, bound = loader.__func__, 1
    else:
        function, bound = loader, 0
    if not isinstance(function, FunctionType):
        return False
    code = function.__code__
    if code.co_flags & _ASYNC_GENERATOR:
        return True
    defaults = function.__defaults__
    if code.co_argcount - bound > (len(defaults) if defaults else 0):
        return True
    keyword_defaults = function.__kwdefaults__
    return code.co_kwonlyargcount > (len(keyword_defaults) if keyword_defaults else 0)


async def await_loader(loader: Callable[[], Awaitable[T]], field: str = "loader") -> T:
    """``await loader()``; a loader whose result cannot be awaited raises InvalidArgumentError.

    Without this, a plain function returning a value fails with Python's "object int can't be
    used in 'await' expression", which names neither the loader nor what to change.
    """
    result: object = loader()
    if not inspect.isawaitable(result):
        kind = "an async callable" if is_async_callable(loader) else "a plain (sync) callable"
        raise InvalidArgumentError(
            field,
            loader,
            f"{_LOADER_ACCEPTED}; this is {kind} and its call returned {describe_value(result)}, "
            "which cannot be awaited",
        )
    return cast(T, await result)


def is_async_callable(loader: object) -> bool:
    """Whether calling ``loader`` runs an ``async def`` (through partials and ``__call__``)."""
    while isinstance(loader, functools.partial):
        loader = loader.func
    if inspect.iscoroutinefunction(loader):
        return True
    # An object with an async __call__ (a class is called to build an instance: not that).
    call = getattr(type(loader), "__call__", None)  # noqa: B004 (the method, to inspect it)
    return not isinstance(loader, type) and inspect.iscoroutinefunction(call)


_NO_TAGS: frozenset[str] = frozenset()


def check_tags(tags: Iterable[str] | None, field: str = "tags") -> frozenset[str]:
    if tags is None or tags == ():  # the default of every write: skip building a frozenset
        return _NO_TAGS
    if isinstance(tags, str | bytes):
        # A bare string is iterable: without this, "products" would become seven one-letter tags.
        raise InvalidArgumentError(field, tags, _TAGS_ACCEPTED)
    try:
        checked = frozenset(tags)
    except TypeError:
        raise InvalidArgumentError(field, tags, _TAGS_ACCEPTED) from None
    for tag in checked:
        if not isinstance(tag, str) or not all(tag.split(TAG_SEPARATOR)):
            raise InvalidArgumentError(field, tag, _TAGS_ACCEPTED)
    return checked


def check_size(size: object, field: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgumentError(field, size, "a whole number of bytes, 0 or more")
    return size


def check_cost(cost: object, field: str = "cost") -> float:
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 < cost < math.inf:
        raise InvalidArgumentError(
            field, cost, "a positive, finite number (what recomputing costs)"
        )
    return float(cost)


@attrs.frozen
class Selection:
    """Which entries an invalidation removes: the union of every criterion given.

    ``pattern`` is a case-sensitive glob on keys (``weather_*``); ``tags`` are hierarchical.
    """

    #: The keys named, in the order given (a tuple: copying one costs far less than hashing
    #: every key into a set on the caller's thread; the actor removes them in slices).
    keys: tuple[str, ...] = ()
    pattern: str | None = None
    tags: frozenset[str] = frozenset()
    _pattern_match: re.Pattern[str] | None = attrs.field(default=None, eq=False, repr=False)
    _key_set: frozenset[str] | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def of(
        cls,
        *,
        key: str | None = None,
        keys: Iterable[str] | None = None,
        pattern: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Selection:
        chosen: tuple[str, ...] = ()
        if keys is not None:
            if isinstance(keys, str | bytes):
                raise InvalidArgumentError("keys", keys, "a list of key strings (or use key=)")
            chosen = tuple(keys)
            # The common case checked in C (100k keys in about a millisecond): a Python-level
            # check per key would hold the event loop for tens of milliseconds.
            if not set(map(type, chosen)) <= {str}:
                chosen = tuple(check_key(k, "keys") for k in chosen)
        if key is not None:
            chosen = (check_key(key), *chosen)
        if pattern is not None and (not isinstance(pattern, str) or not pattern):
            raise InvalidArgumentError("pattern", pattern, "a non-empty glob such as 'weather_*'")
        selected_tags = check_tags(tags)
        if key is None and keys is None and pattern is None and tags is None:
            raise InvalidArgumentError(
                "invalidate()",
                {"key": key, "keys": keys, "pattern": pattern, "tags": tags},
                "at least one of key=, keys=, pattern= or tags= (clear() removes everything)",
            )
        compiled = None if pattern is None else re.compile(fnmatch.translate(pattern))
        return cls(chosen, pattern, selected_tags, compiled)

    def matches(self, key: str, tags: frozenset[str]) -> bool:
        """Whether an entry (or a load in flight) with this key and tags is selected."""
        if self.keys:
            if self._key_set is None:  # built on first use: only loads in flight ask
                object.__setattr__(self, "_key_set", frozenset(self.keys))
            if key in self._key_set:  # type: ignore[operator]
                return True
        if self._pattern_match is not None and self._pattern_match.match(key):
            return True
        return any(
            tag == wanted or tag.startswith(wanted + TAG_SEPARATOR)
            for tag in tags
            for wanted in self.tags
        )
