"""Tools an agent's built-in loop may call: async functions with a name and a JSON schema."""

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

    def __init__(self) -> None:
        self._tools: dict[str, RegisteredTool] = {}

    def register(
        self,
        function: Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> RegisteredTool:
        """Register an ``async def`` as a tool (its name, docstring and signature by default)."""
        if not inspect.iscoroutinefunction(function):
            raise InvalidArgumentError("function", function, "an async def function")
        spec = ToolSpec(
            name or function.__name__,
            description if description is not None else inspect.getdoc(function) or "",
            parameters if parameters is not None else schema_from_signature(function),
        )
        tool = RegisteredTool(spec, function)
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
