"""Validation of the arguments of cache operations: keys, tags, TTLs, sizes, selections.

Each check raises :class:`~rgruntime.InvalidArgumentError` (or ``TypeError`` for a key of the wrong
type) naming the argument, the value and what is accepted, before anything stored is touched.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable

import attrs

from rgruntime.errors import InvalidArgumentError
from rgruntime.runtime.indices import TAG_SEPARATOR

__all__ = ["Selection", "check_cost", "check_key", "check_size", "check_tags"]

_TAGS_ACCEPTED = (
    "a list of non-empty strings such as ['products', 'products:electronics'] "
    f"(levels separated by {TAG_SEPARATOR!r}, none of them empty)"
)


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str):
        raise TypeError(f"{field}: {key!r} is not accepted; expected a str (keys are strings)")
    return key


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
