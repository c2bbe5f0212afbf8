"""Tools an agent's built-in loop may call: async functions with a name and a JSON schema.

Registering a function under a name that is taken *updates* that tool: its version goes up (the
version is part of its results' cache keys, so old results are never served to the new
function), and its cached results, and the answers that used them, are invalidated.
``await client.tools.update(name, ...)`` does the same and returns once they are gone;
``register`` (synchronous) leaves that to the dependency graph's task, which does it at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, get_type_hints

import attrs

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers import ToolSpec

__all__ = ["RegisteredTool", "ToolNotFoundError", "ToolRegistry"]

_JSON_TYPES: Final[dict[Any, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


class ToolNotFoundError(InvalidArgumentError):
    """A model or a caller asked for a tool that is not registered."""


@attrs.frozen
class RegisteredTool:
    """A callable tool: ``await tool.function(**arguments)``; ``spec`` is what the model sees."""

    spec: ToolSpec
    function: Callable[..., Awaitable[Any]] = attrs.field(eq=False)
    #: 1 when first registered, one more at each update.
    version: int = 1

    @property
    def name(self) -> str:
        return self.spec.name


def schema_from_signature(function: Callable[..., Any]) -> dict[str, Any]:
    """A JSON schema of ``function``'s parameters from their annotations (``str`` → string...)."""
    hints = get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        json_type = _JSON_TYPES.get(hints.get(name))
        properties[name] = {"type": json_type} if json_type else {}
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


class ToolRegistry:
    """The client's tools, by name (``client.tools``)."""

    def __init__(
        self,
        *,
        on_replace: Callable[[RegisteredTool], None] | None = None,
        on_update: Callable[[RegisteredTool], Awaitable[None]] | None = None,
    ) -> None:
        self._tools: dict[str, RegisteredTool] = {}
        self._on_replace = on_replace
        self._on_update = on_update

    def register(
        self,
        function: Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> RegisteredTool:
        """Register an ``async def`` as a tool (its name, docstring and signature by default).

        A name already registered is an update (see the module documentation).
        """
        tool = self._build(function, name, description, parameters)
        if tool.version > 1 and self._on_replace is not None:
            self._on_replace(tool)
        return tool

    async def update(
        self,
        name: str,
        function: Callable[..., Awaitable[Any]] | None = None,
        *,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> RegisteredTool:
        """A new version of the registered tool ``name`` (a new function, description or
        schema); returns once its cached results, and the answers that used them, are gone."""
        old = self.get(name)
        if function is None:  # the same function: what is not given stays as it was
            function = old.function
            description = old.spec.description if description is None else description
            parameters = dict(old.spec.parameters) if parameters is None else parameters
        tool = self._build(function, name, description, parameters)
        if self._on_update is not None:
            await self._on_update(tool)
        return tool

    def _build(
        self,
        function: Callable[..., Awaitable[Any]],
        name: str | None,
        description: str | None,
        parameters: dict[str, Any] | None,
    ) -> RegisteredTool:
        if not inspect.iscoroutinefunction(function):
            raise InvalidArgumentError("function", function, "an async def function")
        spec = ToolSpec(
            name or function.__name__,
            description if description is not None else inspect.getdoc(function) or "",
            parameters if parameters is not None else schema_from_signature(function),
        )
        old = self._tools.get(spec.name)
        tool = RegisteredTool(spec, function, old.version + 1 if old is not None else 1)
        self._tools[spec.name] = tool
        return tool

    def get(self, name: str) -> RegisteredTool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self._tools) or "none registered"
            raise ToolNotFoundError("tool", name, f"a registered tool ({known})") from None

    def spec(self, name: str) -> ToolSpec:
        """The tool's spec if registered, else a spec naming it only (the model still sees it)."""
        tool = self._tools.get(name)
        return tool.spec if tool is not None else ToolSpec(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[RegisteredTool]:
        return iter(self._tools.values())
