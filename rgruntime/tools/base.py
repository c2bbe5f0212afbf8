"""The base class of tools whose methods are cached (``rgruntime.tools.Tool``).

Its own module so that the cache's call path (:mod:`rgruntime.tools.caching`) can import it at
the top, instead of on every call.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = ["Tool", "ToolContext"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Tool:
    """Base class for tools whose methods are cached with ``@cache``.

    ``name`` (default: the class name in snake case, ``WeatherTool`` → ``weather_tool``) starts
    the keys of its methods' results (``weather_tool.get_weather:k1:...``), so that
    ``invalidate(pattern="weather_tool.*")`` selects them, as does
    ``invalidate(tags=["tool:weather_tool.get_weather"])``. ``version`` is part of every key:
    bump it when the results change meaning, and old ones are never served again.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str | int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = _snake(cls.__name__)

    def cache_scope(self) -> str | int | None:
        """What distinguishes this instance's results from another's (default: nothing).

        Instances of a tool class share their cached results unless this says otherwise, for
        example ``return self.units`` for a tool built with ``WeatherTool(units="metric")``. It
        must be JSON data. (The instance itself is never part of a key: keys outlive instances,
        and a cache must not keep them alive.)
        """
        return None


class ToolContext:
    """Base class of the context objects callers hand to tools (the agents' ``RunContext``).

    A parameter of a cached tool annotated with a subclass is not part of the result's key: it
    carries who asks, not what is asked. A base class of its own so that this package needs to
    know nothing of the packages above it that define contexts.
    """

    __slots__ = ()
