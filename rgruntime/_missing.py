"""The miss sentinel: ``None`` is a value a cache may hold, so a miss needs its own marker."""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias

__all__ = ["MISSING", "MissingType"]


class MissingType(enum.Enum):
    """The type of :data:`MISSING` (an enum, so that type checkers can narrow on ``is MISSING``)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "rgruntime.MISSING"

    def __bool__(self) -> Literal[False]:
        return False


#: Returned for a miss where ``None`` would be ambiguous: ``layer.get(key, MISSING)``.
MISSING: Final = MissingType.MISSING

Missing: TypeAlias = Literal[MissingType.MISSING]
