"""Checks of store arguments, before anything is sent: keys, tags, TTLs.

Each raises :class:`~rgruntime.InvalidArgumentError` naming the argument, the value (its repr cut
to 200 characters) and what is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from rgruntime.errors import InvalidArgumentError

__all__ = [
    "brief",
    "check_envelope",
    "check_key",
    "check_keys",
    "check_lease_ttl",
    "check_tag_list",
    "check_ttl",
    "check_write",
]

#: Separates the levels of a hierarchical tag (the in-process layer's rule too).
TAG_SEPARATOR: Final = ":"
_REPR_LIMIT: Final = 200


class _Brief:
    """A value whose repr is cut, so that an error message stays readable."""

    __slots__ = ("_text",)

    def __init__(self, value: object) -> None:
        text = repr(value)
        self._text = text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."

    def __repr__(self) -> str:
        return self._text


def brief(value: object) -> object:
    """``value`` for an error message: itself if its repr is short, else a cut stand-in."""
    return value if len(repr(value)) <= _REPR_LIMIT else _Brief(value)


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(field, brief(key), "a non-empty str")
    return key


def check_keys(keys: Iterable[str], field: str = "keys") -> list[str]:
    if isinstance(keys, str | bytes):
        raise InvalidArgumentError(field, brief(keys), "a list of key strings, not one string")
    return [check_key(key, field) for key in keys]


_TAGS_ACCEPTED: Final = (
    "a list of non-empty strings such as ['products', 'products:electronics'] "
    f"(levels separated by {TAG_SEPARATOR!r}, none of them empty)"
)


def check_tag_list(tags: Iterable[str], field: str = "tags") -> list[str]:
    """The tags, each once, sorted."""
    if isinstance(tags, str | bytes):
        # A bare string is iterable: without this, "products" would become eight one-letter tags.
        raise InvalidArgumentError(field, brief(tags), _TAGS_ACCEPTED)
    checked = set()
    for tag in tags:
        if not isinstance(tag, str) or not all(tag.split(TAG_SEPARATOR)):
            raise InvalidArgumentError(field, brief(tag), _TAGS_ACCEPTED)
        checked.add(tag)
    return sorted(checked)


def check_envelope(envelope: object) -> bytes:
    if not isinstance(envelope, bytes):
        raise InvalidArgumentError(
            "envelope", brief(envelope), "bytes, as Serializer.encode returns them"
        )
    return envelope


def check_write(
    key: object, envelope: object, ttl: object, tags: Iterable[str]
) -> tuple[str, bytes, float | None, list[str]]:
    """The arguments of ``store.set``, checked: key, envelope, TTL, tags (sorted, each once)."""
    return check_key(key), check_envelope(envelope), check_ttl(ttl), check_tag_list(tags)


#: The longest TTL a store takes: a century. Redis scripts carry TTLs as Lua numbers, which
#: print in exponent notation (refused as "not an integer") from about 10^14 ms.
MAX_STORE_TTL: Final = 100 * 365 * 86400.0


def check_ttl(ttl: object, field: str = "ttl") -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_STORE_TTL:
        raise InvalidArgumentError(
            field,
            brief(ttl),
            f"None (no expiry) or a positive number of seconds, at most {MAX_STORE_TTL:,.0f}"
            " (100 years)",
        )
    return float(ttl)


def check_lease_ttl(ttl: object) -> float:
    checked = check_ttl(ttl, "ttl")
    if checked is None:
        raise InvalidArgumentError(
            "ttl", ttl, "a positive number of seconds: a lease must expire if its holder crashes"
        )
    return checked
