"""The provider records: validation, plain-data round trips, and cache key material."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    Message,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def conversation() -> CompletionRequest:
    return CompletionRequest(
        "gpt-4o",
        [
            Message("system", "You are terse."),
            Message("user", "Weather in Paris?", name="ann"),
            Message(
                "assistant",
                None,
                tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')],
            ),
            Message("tool", '{"temp": 21}', tool_call_id="call_1"),
        ],
        temperature=0.2,
        max_tokens=256,
        tools=[WEATHER],
        tool_choice="auto",
        stop=["\n\n"],
        seed=7,
        extra={"top_p": 0.9, "response_format": {"type": "text"}},
    )


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CompletionRequest("", [Message("user", "hi")]), "model"),
        (lambda: CompletionRequest("  ", [Message("user", "hi")]), "model"),
        (lambda: CompletionRequest("m", []), "messages"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], temperature=2.5), "temperature"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], temperature=-0.1), "temperature"),
        (
            lambda: CompletionRequest("m", [Message("user", "hi")], temperature=float("nan")),
            "temperature",
        ),
        (lambda: CompletionRequest("m", [Message("user", "hi")], temperature=True), "temperature"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], max_tokens=0), "max_tokens"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], max_tokens=1.5), "max_tokens"),
        (
            lambda: CompletionRequest("m", [Message("user", "hi")], tool_choice="auto"),
            "tool_choice",
        ),
        (
            lambda: CompletionRequest(
                "m", [Message("user", "hi")], tools=[WEATHER], tool_choice="x"
            ),
            "tool_choice",
        ),
        (
            lambda: CompletionRequest("m", [Message("user", "hi")], tools=[WEATHER, WEATHER]),
            "tools",
        ),
        (lambda: CompletionRequest("m", [Message("user", "hi")], stop=[""]), "stop"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], seed="7"), "seed"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], extra={"model": "x"}), "extra"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], extra={"stream": True}), "extra"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], extra={1: 2}), "extra"),
        (lambda: CompletionRequest("m", [Message("user", "hi")], extra={"x": {1, 2}}), "extra.x"),
        (
            lambda: CompletionRequest("m", [Message("user", "hi")], extra={"x": float("inf")}),
            "extra.x",
        ),
        (lambda: CompletionRequest("m", "hi"), "messages"),
        (lambda: Message("wizard", "hi"), "message.role"),
        (lambda: Message("user", None), "message.content"),
        (lambda: Message("user", 42), "message.content"),
        (lambda: Message("user", "hi", name=""), "message.name"),
        (lambda: Message("tool", "result"), "message.tool_call_id"),
        (lambda: Message("user", "hi", tool_call_id="call_1"), "message.tool_call_id"),
        (lambda: Message("user", "hi", tool_calls=[ToolCall("c", "f")]), "message.tool_calls"),
        (lambda: ToolCall("", "f"), "tool_call.id"),
        (lambda: ToolCall("c", ""), "tool_call.name"),
        (lambda: ToolCall("c", "f", {"a": 1}), "tool_call.arguments"),
        (lambda: ToolSpec("has space"), "tool.name"),
        (lambda: ToolSpec("x" * 65), "tool.name"),
        (lambda: ToolSpec("f", parameters=[1]), "tool.parameters"),
        (lambda: Usage(-1, 0), "usage.prompt_tokens"),
        (lambda: Usage(0, 1.5), "usage.completion_tokens"),
        (lambda: Completion("hi", finish_reason=""), "completion.finish_reason"),
        (lambda: Completion("hi", usage=(1, 2)), "completion.usage"),
        (lambda: ToolCallDelta(-1), "tool_call_delta.index"),
        (lambda: CompletionChunk(usage={"prompt_tokens": 1}), "chunk.usage"),
    ],
)
def test_bad_values_name_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build()
    assert caught.value.field == field
    assert field in str(caught.value)
    assert caught.value.accepted


def test_messages_and_tools_accept_plain_dicts() -> None:
    request = CompletionRequest(
        "gpt-4o",
        [{"role": "user", "content": "hi"}],
        tools=[{"name": "get_weather", "parameters": {"type": "object"}}],
    )
    assert request.messages == (Message("user", "hi"),)
    assert request.tools[0] == ToolSpec("get_weather", "", {"type": "object"})


def test_a_single_stop_string_is_not_split_into_characters() -> None:
    assert CompletionRequest("m", [Message("user", "hi")], stop="END").stop == ("END",)


def test_records_are_frozen_and_json_inside_them_is_a_copy() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tool = ToolSpec("get_weather", parameters=schema)
    schema["properties"]["city"]["type"] = "integer"  # the caller's dict changes later
    assert tool.parameters["properties"]["city"]["type"] == "string"
    with pytest.raises(TypeError):
        tool.parameters["type"] = "array"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tool.name = "other"  # type: ignore[misc]
    # Hashable, so requests can key a dict; equal records hash alike.
    assert hash(conversation()) == hash(conversation())


def test_usage_totals_and_adds() -> None:
    assert Usage(10, 5).total_tokens == 15
    assert Usage(1, 2) + Usage(3, 4) == Usage(4, 6)


def test_tool_call_arguments_parse() -> None:
    assert ToolCall("c", "f", '{"city": "Paris"}').parse_arguments() == {"city": "Paris"}
    with pytest.raises(InvalidArgumentError):
        ToolCall("c", "f", '{"city": ').parse_arguments()
    with pytest.raises(InvalidArgumentError):
        ToolCall("c", "f", "[1, 2]").parse_arguments()


def test_completion_to_message() -> None:
    calls = (ToolCall("c", "f", "{}"),)
    assert Completion("", calls).to_message() == Message("assistant", None, tool_calls=calls)
    assert Completion("Hello").to_message() == Message("assistant", "Hello")


# --- plain data round trips ----------------------------------------------------------------------


RECORDS = [
    conversation(),
    Message("user", "hi"),
    Message("assistant", None, tool_calls=[ToolCall("c", "f", "{}")]),
    ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
    WEATHER,
    Usage(12, 34),
    Completion("Hi", (ToolCall("c", "f", "{}"),), Usage(1, 2), "tool_calls", "gpt-4o"),
    Completion("", finish_reason=None),
    CompletionChunk("He", (ToolCallDelta(0, "c", "f", "{"),), None, None, "gpt-4o"),
    CompletionChunk(finish_reason="stop", usage=Usage(3, 4)),
    ToolCallDelta(1, arguments='"x"'),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_to_dict_from_dict_round_trip_through_json_and_msgpack(record: Any) -> None:
    data = record.to_dict()
    assert type(record).from_dict(json.loads(json.dumps(data))) == record
    assert type(record).from_dict(msgpack.unpackb(msgpack.packb(data))) == record


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (Message, {"role": "user", "content": "hi", "colour": "red"}, "message"),
        (Message, {"content": "hi"}, "message.role"),
        (Message, ["user", "hi"], "message"),
        (Usage, {"prompt_tokens": 1}, "usage.completion_tokens"),
        (
            Completion,
            {"text": "x", "usage": {"prompt_tokens": -1, "completion_tokens": 0}},
            "usage.prompt_tokens",
        ),
        (CompletionRequest, {"model": "m"}, "request.messages"),
        (
            CompletionRequest,
            {"model": "m", "messages": [{"role": "bot", "content": "x"}]},
            "message.role",
        ),
    ],
)
def test_from_dict_rejects_bad_data(cls: Any, data: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        cls.from_dict(data)
    assert caught.value.field == field


def test_usage_from_dict_accepts_openai_total_tokens() -> None:
    data = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert Usage.from_dict(data) == Usage(1, 2)


# --- key material --------------------------------------------------------------------------------


def test_key_material_is_canonical_plain_data() -> None:
    material = conversation().key_material()
    assert json.loads(json.dumps(material)) == material
    assert list(material) == sorted(material)
    assert material["tools"][0]["parameters"] == {
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "type": "object",
    }
    assert list(material["tools"][0]["parameters"]) == ["properties", "required", "type"]


def test_key_material_ignores_dict_order_and_spelled_out_defaults() -> None:
    a = CompletionRequest("m", [Message("user", "hi")], extra={"a": 1, "b": {"x": 1, "y": 2}})
    b = CompletionRequest(
        "m",
        [{"role": "user", "content": "hi", "name": None}],
        extra={"b": {"y": 2, "x": 1}, "a": 1},
    )
    assert a.key_material() == b.key_material()
    assert a.fingerprint() == b.fingerprint()
    assert CompletionRequest("m", [Message("user", "hi")], temperature=1).fingerprint() == (
        CompletionRequest("m", [Message("user", "hi")]).fingerprint()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o-mini"},
        {"temperature": 0.3},
        {"max_tokens": 100},
        {"tools": [WEATHER, ToolSpec("search")]},
        {"tools": [ToolSpec("get_weather", WEATHER.description, {"type": "object"})]},
        {"tools": [ToolSpec("get_weather", "other description", WEATHER.parameters)]},
        {"tool_choice": "required"},
        {"tool_choice": "get_weather"},
        {"stop": ["END"]},
        {"seed": 8},
        {"extra": {"top_p": 0.5}},
        {"messages": [Message("user", "Weather in Rome?")]},
        {"messages": [Message("user", "Weather in Paris?", name="bob")]},
    ],
)
def test_everything_that_shapes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    base = CompletionRequest(
        "gpt-4o", [Message("user", "Weather in Paris?")], temperature=0.2, tools=[WEATHER]
    )
    changed = attrs.evolve(base, **change)
    assert changed.key_material() != base.key_material()
    assert changed.fingerprint() != base.fingerprint()


def test_fingerprint_is_stable_across_processes() -> None:
    # A fresh interpreter with another hash seed: the digest must not depend on salted hash().
    script = (
        "from tests.providers.test_types import conversation; print(conversation().fingerprint())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).parents[2],
    )
    assert other.stdout.strip() == conversation().fingerprint()
