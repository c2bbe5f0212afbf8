"""The records that cross the provider boundary: requests, messages, tool calls, completions.

All are frozen attrs classes, validated when built (a bad value raises
:class:`~rgruntime.InvalidArgumentError` naming the field, the value and what is accepted), and
each has ``to_dict()`` / ``from_dict()`` producing and reading plain data (str, int, float, bool,
None, list, dict with str keys), so that a completion can be cached through JSON or msgpack.

JSON inside a record (a tool's parameter schema, a request's ``extra`` options) is deep-copied into
read-only mappings and tuples when the record is built: later changes to the caller's dict cannot
change a request that is already a cache key.
"""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
import xxhash

from rgruntime.errors import InvalidArgumentError

__all__ = [
    "FINISH_REASONS",
    "ROLES",
    "TOOL_CHOICES",
    "Completion",
    "CompletionChunk",
    "CompletionRequest",
    "Message",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
]

#: Message roles, as the OpenAI chat API names them.
ROLES: Final = ("system", "developer", "user", "assistant", "tool")

#: ``tool_choice`` values besides the name of one of the request's tools.
TOOL_CHOICES: Final = ("auto", "none", "required")

#: The finish reasons OpenAI sends. Others (from compatible servers) are kept as they come.
FINISH_REASONS: Final = ("stop", "length", "tool_calls", "content_filter")

# OpenAI's rule for function names; other OpenAI-compatible servers accept at least these.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Request options that have their own field: ``extra`` may not set them behind the field's back.
_RESERVED_OPTIONS: Final = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "max_tokens",
        "tools",
        "tool_choice",
        "stop",
        "seed",
        "stream",
        "stream_options",
    }
)


# --- JSON values held inside records ------------------------------------------------------------


def _freeze(value: Any, field: str) -> Any:
    """A read-only deep copy of a JSON value (mappings become mapping proxies, lists tuples)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(
                field, value, "a finite number (JSON has no NaN or infinity)"
            )
        return value
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(field, key, "JSON object keys, which are strings")
            frozen[key] = _freeze(item, f"{field}.{key}")
        return types.MappingProxyType(frozen)
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, f"{field}[{i}]") for i, item in enumerate(value))
    raise InvalidArgumentError(
        field, value, "JSON data: str, int, float, bool, None, lists and dicts with str keys"
    )


def _thaw(value: Any) -> Any:
    """Plain, mutable JSON data from a frozen value (dict keys sorted, so output is canonical)."""
    if isinstance(value, Mapping):
        return {key: _thaw(value[key]) for key in sorted(value)}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def _json_object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(field, value, "a JSON object (a dict with str keys)")
    frozen: Mapping[str, Any] = _freeze(value, field)
    return frozen


def _parameters(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return _json_object(value, "tool.parameters")


def _extra(value: Mapping[str, Any]) -> Mapping[str, Any]:
    frozen = _json_object(value, "extra")
    for key in frozen:
        if key in _RESERVED_OPTIONS:
            raise InvalidArgumentError(
                "extra",
                key,
                "provider options other than "
                f"{', '.join(sorted(_RESERVED_OPTIONS))} (those have their own fields)",
            )
    return frozen


# --- small checks --------------------------------------------------------------------------------


def _check_str(value: object, field: str, accepted: str = "a string") -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(field, value, accepted)
    return value


def _check_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(field, value, "a non-empty string")
    return value


def _check_count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(field, value, "a whole number of tokens, 0 or more")
    return value


def _mapping(data: object, kind: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """Check that ``data`` is a mapping with every required key and no unknown one."""
    if not isinstance(data, Mapping):
        keys = f" with keys {', '.join(required)}" if required else ""
        raise InvalidArgumentError(kind, data, f"a dict{keys}")
    for key in required:
        if key not in data:
            raise InvalidArgumentError(
                f"{kind}.{key}", "<missing>", "a value (the key is required)"
            )
    allowed = (*required, *optional)
    for key in data:
        if key not in allowed:
            raise InvalidArgumentError(kind, key, f"only the keys {', '.join(allowed)}")


# --- records -------------------------------------------------------------------------------------


@attrs.frozen
class ToolCall:
    """A model's request to call a tool. ``arguments`` is a JSON string, as OpenAI sends it (a
    model may produce malformed JSON: it is kept as sent, and :meth:`parse_arguments` checks it)."""

    id: str
    name: str
    arguments: str = "{}"

    def __attrs_post_init__(self) -> None:
        _check_name(self.id, "tool_call.id")
        _check_name(self.name, "tool_call.name")
        _check_str(self.arguments, "tool_call.arguments", 'a JSON string such as \'{"q": "x"}\'')

    def parse_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises InvalidArgumentError if they are not a JSON object."""
        try:
            parsed = json.loads(self.arguments)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidArgumentError("tool_call.arguments", self.arguments, "a JSON object")
        return parsed

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        _mapping(data, "tool_call", ("id", "name"), ("arguments",))
        return cls(data["id"], data["name"], data.get("arguments", "{}"))


def _tool_calls(value: Iterable[ToolCall | Mapping[str, Any]]) -> tuple[ToolCall, ...]:
    if isinstance(value, str | bytes | Mapping):
        raise InvalidArgumentError("tool_calls", value, "a list of ToolCall")
    return tuple(call if isinstance(call, ToolCall) else ToolCall.from_dict(call) for call in value)


@attrs.frozen
class Message:
    """One chat message.

    ``content`` may be None only for an assistant message (one that only calls tools).
    ``tool_calls`` belong to assistant messages; ``tool_call_id`` is required on, and only on, a
    ``"tool"`` message (the result of the call with that id).
    """

    role: str
    content: str | None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    tool_call_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidArgumentError("message.role", self.role, f"one of {', '.join(ROLES)}")
        if self.content is None:
            if self.role != "assistant":
                raise InvalidArgumentError(
                    "message.content", None, "a string (None only in an assistant message)"
                )
        else:
            _check_str(self.content, "message.content")
        if self.name is not None:
            _check_name(self.name, "message.name")
        if self.tool_calls and self.role != "assistant":
            raise InvalidArgumentError(
                "message.tool_calls", self.tool_calls, "no tool calls outside assistant messages"
            )
        if self.role == "tool":
            _check_name(self.tool_call_id, "message.tool_call_id")
        elif self.tool_call_id is not None:
            raise InvalidArgumentError(
                "message.tool_call_id", self.tool_call_id, "None outside 'tool' messages"
            )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        # Optional fields are left out at their defaults: conversations are most of a request.
        if self.name is not None:
            data["name"] = self.name
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        _mapping(data, "message", ("role",), ("content", "name", "tool_calls", "tool_call_id"))
        return cls(
            data["role"],
            data.get("content"),
            name=data.get("name"),
            tool_calls=data.get("tool_calls", ()),
            tool_call_id=data.get("tool_call_id"),
        )


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


@attrs.frozen
class ToolSpec:
    """A tool the model may call: its name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str = ""
    # Excluded from the hash (a mapping is not hashable); equality still compares it.
    parameters: Mapping[str, Any] = attrs.field(
        factory=_empty_schema, converter=_parameters, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOOL_NAME.fullmatch(self.name):
            raise InvalidArgumentError(
                "tool.name", self.name, "1 to 64 letters, digits, '_' or '-' (OpenAI's rule)"
            )
        _check_str(self.description, "tool.description")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": _thaw(self.parameters),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolSpec:
        _mapping(data, "tool", ("name",), ("description", "parameters"))
        return cls(
            data["name"],
            data.get("description", ""),
            data["parameters"] if "parameters" in data else _empty_schema(),
        )


def _messages(value: Iterable[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    if isinstance(value, str | bytes | Mapping):
        raise InvalidArgumentError("messages", value, "a list of Message")
    return tuple(m if isinstance(m, Message) else Message.from_dict(m) for m in value)


def _tools(value: Iterable[ToolSpec | Mapping[str, Any]]) -> tuple[ToolSpec, ...]:
    if isinstance(value, str | bytes | Mapping):
        raise InvalidArgumentError("tools", value, "a list of ToolSpec")
    return tuple(t if isinstance(t, ToolSpec) else ToolSpec.from_dict(t) for t in value)


def _stop(value: str | Iterable[str]) -> tuple[str, ...]:
    # OpenAI accepts one stop string or a list: a bare string must not become its characters.
    stops = (value,) if isinstance(value, str) else tuple(value)
    for stop in stops:
        if not isinstance(stop, str) or not stop:
            raise InvalidArgumentError("stop", stop, "non-empty strings")
    return stops


def _temperature(value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= value <= 2.0  # also rejects NaN
    ):
        raise InvalidArgumentError("temperature", value, "a number from 0 to 2")
    return float(value)


@attrs.frozen
class CompletionRequest:
    """Everything sent to a model for one completion.

    ``tool_choice`` is None (the provider's default), ``"auto"``, ``"none"``, ``"required"`` or
    the name of one of ``tools``. ``extra`` carries further provider options as JSON (``top_p``,
    ``response_format``, ``max_completion_tokens``...); they are sent as given and are part of the
    cache key.
    """

    model: str
    messages: tuple[Message, ...] = attrs.field(converter=_messages)
    temperature: float = attrs.field(default=1.0, converter=_temperature)
    max_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = attrs.field(default=(), converter=_tools)
    tool_choice: str | None = None
    stop: tuple[str, ...] = attrs.field(default=(), converter=_stop)
    seed: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_extra, hash=False)

    def __attrs_post_init__(self) -> None:
        _check_name(self.model, "model")
        if not self.messages:
            raise InvalidArgumentError("messages", self.messages, "at least one message")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise InvalidArgumentError("max_tokens", self.max_tokens, "None or a positive int")
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise InvalidArgumentError("tools", names, "tools with distinct names")
        if self.tool_choice is not None:
            if not self.tools:
                raise InvalidArgumentError(
                    "tool_choice", self.tool_choice, "None when the request has no tools"
                )
            if self.tool_choice not in (*TOOL_CHOICES, *names):
                raise InvalidArgumentError(
                    "tool_choice",
                    self.tool_choice,
                    f"None, one of {', '.join(TOOL_CHOICES)}, or a tool name: {', '.join(names)}",
                )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise InvalidArgumentError("seed", self.seed, "None or an int")

    def tool(self, name: str) -> ToolSpec | None:
        """The tool called ``name``, if the request offers it."""
        return next((tool for tool in self.tools if tool.name == name), None)

    def key_material(self) -> dict[str, Any]:
        """Everything that shapes the answer, as canonical plain data to hash into a cache key.

        Dict keys are sorted at every level and every field is present (a default is written
        out), so equal requests give equal material across processes and versions of the caller's
        code. Message and tool order is kept: it is part of the prompt the model sees.
        """
        return {
            "extra": _thaw(self.extra),
            "max_tokens": self.max_tokens,
            "messages": [_canonical_message(message) for message in self.messages],
            "model": self.model,
            "seed": self.seed,
            "stop": list(self.stop),
            "temperature": self.temperature,
            "tool_choice": self.tool_choice,
            "tools": [tool.to_dict() for tool in self.tools],
        }

    def fingerprint(self) -> str:
        """A stable 128-bit hex digest of :meth:`key_material` (xxh3 over canonical JSON)."""
        encoded = json.dumps(
            self.key_material(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return xxhash.xxh3_128_hexdigest(encoded.encode("utf-8"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [message.to_dict() for message in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "tools": [tool.to_dict() for tool in self.tools],
            "tool_choice": self.tool_choice,
            "stop": list(self.stop),
            "seed": self.seed,
            "extra": _thaw(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompletionRequest:
        optional = ("temperature", "max_tokens", "tools", "tool_choice", "stop", "seed", "extra")
        _mapping(data, "request", ("model", "messages"), optional)
        return cls(data["model"], data["messages"], **{k: data[k] for k in optional if k in data})


def _canonical_message(message: Message) -> dict[str, Any]:
    # Every field written out, so that an omitted default and an explicit one hash alike.
    return {
        "content": message.content,
        "name": message.name,
        "role": message.role,
        "tool_call_id": message.tool_call_id,
        "tool_calls": [call.to_dict() for call in message.tool_calls],
    }


@attrs.frozen
class Usage:
    """Tokens billed for one completion."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __attrs_post_init__(self) -> None:
        _check_count(self.prompt_tokens, "usage.prompt_tokens")
        _check_count(self.completion_tokens, "usage.completion_tokens")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        # total_tokens is accepted (OpenAI sends it) and ignored: it is derived.
        _mapping(data, "usage", ("prompt_tokens", "completion_tokens"), ("total_tokens",))
        return cls(data["prompt_tokens"], data["completion_tokens"])


def _check_finish_reason(value: object, field: str) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidArgumentError(
            field, value, f"None or a non-empty string such as {', '.join(FINISH_REASONS)}"
        )


@attrs.frozen
class Completion:
    """A model's answer: its text (``""`` when it only calls tools), the tool calls it makes, the
    tokens billed, why it stopped (``"stop"``, ``"length"``, ``"tool_calls"``...) and the model
    that answered."""

    text: str
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    usage: Usage = attrs.field(factory=Usage)
    finish_reason: str | None = "stop"
    model: str = ""

    def __attrs_post_init__(self) -> None:
        _check_str(self.text, "completion.text")
        if not isinstance(self.usage, Usage):
            raise InvalidArgumentError("completion.usage", self.usage, "a Usage")
        _check_finish_reason(self.finish_reason, "completion.finish_reason")
        _check_str(self.model, "completion.model")

    def to_message(self) -> Message:
        """The assistant message that records this answer in a conversation."""
        content = None if not self.text and self.tool_calls else self.text
        return Message("assistant", content, tool_calls=self.tool_calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "usage": self.usage.to_dict(),
            "finish_reason": self.finish_reason,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Completion:
        _mapping(data, "completion", ("text",), ("tool_calls", "usage", "finish_reason", "model"))
        return cls(
            data["text"],
            data.get("tool_calls", ()),
            Usage.from_dict(data["usage"]) if "usage" in data else Usage(),
            data.get("finish_reason", "stop"),
            data.get("model", ""),
        )


@attrs.frozen
class ToolCallDelta:
    """A piece of a streamed tool call. Pieces with the same ``index`` make one call: the first
    carries its ``id`` and ``name``, and the ``arguments`` pieces concatenate (OpenAI's scheme)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def __attrs_post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise InvalidArgumentError("tool_call_delta.index", self.index, "an int, 0 or more")
        if self.id is not None:
            _check_str(self.id, "tool_call_delta.id")
        if self.name is not None:
            _check_str(self.name, "tool_call_delta.name")
        _check_str(self.arguments, "tool_call_delta.arguments")

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallDelta:
        _mapping(data, "tool_call_delta", ("index",), ("id", "name", "arguments"))
        return cls(data["index"], data.get("id"), data.get("name"), data.get("arguments", ""))


def _deltas(value: Iterable[ToolCallDelta | Mapping[str, Any]]) -> tuple[ToolCallDelta, ...]:
    if isinstance(value, str | bytes | Mapping):
        raise InvalidArgumentError("tool_call_deltas", value, "a list of ToolCallDelta")
    return tuple(d if isinstance(d, ToolCallDelta) else ToolCallDelta.from_dict(d) for d in value)


@attrs.frozen
class CompletionChunk:
    """One event of a streamed completion.

    ``finish_reason`` arrives on the chunk that ends the answer and ``usage`` on the last chunk
    (OpenAI sends it alone, after the finish reason). ``model`` is the answering model when the
    provider says so.
    """

    text_delta: str = ""
    tool_call_deltas: tuple[ToolCallDelta, ...] = attrs.field(default=(), converter=_deltas)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_str(self.text_delta, "chunk.text_delta")
        _check_finish_reason(self.finish_reason, "chunk.finish_reason")
        if self.usage is not None and not isinstance(self.usage, Usage):
            raise InvalidArgumentError("chunk.usage", self.usage, "None or a Usage")
        if self.model is not None:
            _check_str(self.model, "chunk.model")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_delta": self.text_delta,
            "tool_call_deltas": [delta.to_dict() for delta in self.tool_call_deltas],
            "finish_reason": self.finish_reason,
            "usage": None if self.usage is None else self.usage.to_dict(),
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompletionChunk:
        optional = ("text_delta", "tool_call_deltas", "finish_reason", "usage", "model")
        _mapping(data, "chunk", (), optional)
        usage = data.get("usage")
        return cls(
            data.get("text_delta", ""),
            data.get("tool_call_deltas", ()),
            data.get("finish_reason"),
            None if usage is None else Usage.from_dict(usage),
            data.get("model"),
        )
