"""The OpenAI-compatible provider against the fake server, in process (httpx.ASGITransport):
the wire format both ways, event-stream parsing, errors, and the client's lifecycle."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import time
import traceback
from typing import Any

import httpx
import pytest

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers import (
    Completion,
    CompletionRequest,
    Message,
    ModelProvider,
    OpenAICompatibleProvider,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ToolCall,
    ToolSpec,
    Usage,
    collect,
)
from rgruntime.providers.openai import _EventDecoder, _retry_after

from .fake_openai import API_KEY, FAKE_URL, TOOL_ARGUMENTS, FakeOpenAI, Reply, in_process

pytestmark = pytest.mark.anyio

# httpx's response iterators are nested async generators; when a stream is closed early, the
# inner ones are dropped unfinished and trio warns about each (encode/httpx#3686). The connection
# itself is closed: the tests below check that.
HTTPX_ABANDONED_GENERATORS = pytest.mark.filterwarnings(
    r"ignore:Async generator 'http(x|core)\.:ResourceWarning"
)

WEATHER = ToolSpec(
    "get_weather",
    "Weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def ask(text: str = "Hello", **options: Any) -> CompletionRequest:
    return CompletionRequest("gpt-4o", [Message("user", text)], **options)


# --- the request ---------------------------------------------------------------------------------


async def test_the_request_body_and_headers() -> None:
    fake = FakeOpenAI()
    request = CompletionRequest(
        "gpt-4o",
        [
            Message("system", "Be brief."),
            Message("user", "Weather in Paris?", name="ann"),
            Message(
                "assistant",
                None,
                tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')],
            ),
            Message("tool", '{"temp": 21}', tool_call_id="call_1"),
        ],
        temperature=0.2,
        max_tokens=100,
        tools=[WEATHER],
        tool_choice="get_weather",
        stop=["END"],
        seed=42,
        extra={"top_p": 0.5, "response_format": {"type": "text"}},
    )
    async with in_process(fake, default_headers={"X-Team": "search"}) as provider:
        await provider.complete(request)
    received = fake.requests[0]
    assert received.body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?", "name": "ann"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
        ],
        "temperature": 0.2,
        "max_tokens": 100,
        "tools": [{"type": "function", "function": WEATHER.to_dict()}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stop": ["END"],
        "seed": 42,
        "top_p": 0.5,
        "response_format": {"type": "text"},
    }
    assert received.headers["authorization"] == f"Bearer {API_KEY}"
    assert received.headers["accept"] == "application/json"
    assert received.headers["x-team"] == "search"


async def test_request_options() -> None:
    fake = FakeOpenAI()
    async with in_process(fake, max_tokens_param="max_completion_tokens", api_key=None) as p:
        await p.complete(ask(max_tokens=10, tools=[WEATHER], tool_choice="required"))
        await collect(p.stream(ask()))
    first, second = (r.body for r in fake.requests)
    assert first["max_completion_tokens"] == 10
    assert "max_tokens" not in first
    assert first["tool_choice"] == "required"
    assert "authorization" not in fake.requests[0].headers
    assert second["stream"] is True
    assert second["stream_options"] == {"include_usage": True}
    assert fake.requests[1].headers["accept"] == "text/event-stream"


async def test_without_stream_options_a_stream_reports_no_usage() -> None:
    fake = FakeOpenAI()
    async with in_process(fake, include_usage=False) as provider:
        completion = await collect(provider.stream(ask()))
    assert "stream_options" not in fake.requests[0].body
    assert completion.text == "Echo: Hello"
    assert completion.usage == Usage(0, 0)


# --- the answer ----------------------------------------------------------------------------------


async def test_a_text_answer() -> None:
    async with in_process(FakeOpenAI()) as provider:
        assert isinstance(provider, ModelProvider)
        completion = await provider.complete(ask("Hi there"))
    assert completion == Completion("Echo: Hi there", (), Usage(8, 14), "stop", "gpt-4o")


async def test_a_tool_call_answer_and_the_follow_up() -> None:
    async with in_process(FakeOpenAI()) as provider:
        request = ask("Weather in Paris?", tools=[WEATHER])
        first = await provider.complete(request)
        assert first == Completion(
            "",
            (ToolCall("call_abc123", "get_weather", TOOL_ARGUMENTS),),
            Usage(17, len(TOOL_ARGUMENTS)),
            "tool_calls",
            "gpt-4o",
        )
        follow_up = CompletionRequest(
            "gpt-4o",
            [
                *request.messages,
                first.to_message(),
                Message("tool", "21 C", tool_call_id="call_abc123"),
            ],
            tools=[WEATHER],
        )
        second = await provider.complete(follow_up)
    assert second.text == "Echo: 21 C"
    assert second.finish_reason == "stop"


@pytest.mark.parametrize("tools", [(), (WEATHER,)], ids=["text", "tool-call"])
async def test_a_stream_amounts_to_the_same_completion(tools: tuple[ToolSpec, ...]) -> None:
    fake = FakeOpenAI()
    async with in_process(fake) as provider:
        request = ask("Stream me, please", tools=tools)
        assert await collect(provider.stream(request)) == await provider.complete(request)


async def test_lenient_parsing_of_compatible_servers() -> None:
    fake = FakeOpenAI()
    answer = {
        "model": "llama3",
        "choices": [
            {
                "index": 0,
                "message": {
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    fake.script = [Reply(body=answer)]
    async with in_process(fake) as provider:
        completion = await provider.complete(ask())
    # Content parts joined, object arguments encoded, a missing id made up, no usage -> zeros.
    assert completion == Completion(
        "ab", (ToolCall("call_0", "f", '{"x": 1}'),), Usage(0, 0), "tool_calls", "llama3"
    )


@pytest.mark.parametrize(
    "body",
    [
        "this is not json",
        {"choices": []},
        {"object": "chat.completion"},
        {"choices": [{"index": 0}]},
        {"choices": [{"message": {"content": 3}}]},
        {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -1}},
        {"choices": [{"message": {"tool_calls": [{"function": {}}]}}]},
    ],
)
async def test_a_malformed_answer_is_a_protocol_error(body: Any) -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(body=body)]
    async with in_process(fake) as provider:
        with pytest.raises(ProviderProtocolError) as caught:
            await provider.complete(ask())
    assert str(caught.value).startswith("openai: ")
    assert len(fake.requests) == 1  # not retried: it would come back the same


# --- event streams -------------------------------------------------------------------------------


def chunk(content: str | None = None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps(
        {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    )


async def stream_of(raw: str) -> Completion:
    fake = FakeOpenAI()
    fake.script = [Reply(raw=raw)]
    async with in_process(fake) as provider:
        return await collect(provider.stream(ask()))


async def test_event_stream_details() -> None:
    raw = (
        ": a comment, then a keep-alive\n\n"
        "event: message\r\n"
        f"id: 1\r\ndata:{chunk('a')}\r\n\r\n"
        f"data: {chunk('b')}\n\n"
        f"data: {chunk(None, 'stop')}\n\n"
        "data: [DONE]\n\n"
    )
    assert await stream_of(raw) == Completion("ab", (), Usage(), "stop", "m")


async def test_a_stream_may_end_without_done_once_finished() -> None:
    raw = f"data: {chunk('a')}\n\ndata: {chunk(None, 'length')}"  # no blank line at the end
    assert await stream_of(raw) == Completion("a", (), Usage(), "length", "m")


async def test_multi_line_data_is_joined() -> None:
    payload = chunk("x", "stop").replace(", ", ",\ndata: ")
    assert "\n" in payload
    assert (await stream_of(f"data: {payload}\n\ndata: [DONE]\n\n")).text == "x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (f"data: {chunk('a')}\n\n", "ended before the answer finished"),
        ("data: {not json\n\n", "an event is not JSON"),
        ('data: {"choices": [{"delta": {"content": 5}}]}\n\n', "unexpected event"),
        ('data: {"choices": "nope"}\n\n', "unexpected event"),
    ],
)
@HTTPX_ABANDONED_GENERATORS
async def test_a_broken_stream_is_a_protocol_error(raw: str, message: str) -> None:
    with pytest.raises(ProviderProtocolError, match=message):
        await stream_of(raw)


@HTTPX_ABANDONED_GENERATORS
async def test_an_error_event_mid_stream() -> None:
    raw = f"data: {chunk('a')}\n\n" + 'data: {"error": {"message": "overloaded"}}\n\n'
    with pytest.raises(ProviderError, match="overloaded"):
        await stream_of(raw)


def test_the_event_decoder() -> None:
    decoder = _EventDecoder()
    lines = ["data: one", "data: two", "", ": comment", "retry: 5", "data:three", ""]
    assert [event for line in lines for event in decoder.feed(line)] == ["one\ntwo", "three"]
    assert list(decoder.feed("data: tail")) == []
    assert list(decoder.flush()) == ["tail"]
    assert list(decoder.flush()) == []


@HTTPX_ABANDONED_GENERATORS
async def test_closing_a_stream_early_closes_the_response() -> None:
    fake = FakeOpenAI()
    closed: list[bool] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=fake.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            return httpx.Response(
                response.status_code, headers=response.headers, stream=Stream(response.stream)
            )

    class Stream(httpx.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __aiter__(self) -> Any:
            return self.inner.__aiter__()

        async def aclose(self) -> None:
            closed.append(True)
            await self.inner.aclose()

    async with httpx.AsyncClient(transport=Recording()) as client:
        provider = OpenAICompatibleProvider(FAKE_URL, client=client)
        async with contextlib.aclosing(provider.stream(ask("a long answer " * 20))) as chunks:
            async for _ in chunks:
                break
        assert closed == [True]


# --- errors --------------------------------------------------------------------------------------


async def test_http_errors_carry_status_and_excerpt_but_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeOpenAI()
    echo = {"error": {"message": f"Incorrect API key provided: {API_KEY}.", "code": "invalid"}}
    fake.script = [Reply(500, echo), Reply(401, echo)]
    caplog.set_level(logging.DEBUG)
    async with in_process(fake, backoff=0.001) as provider:
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(ask())
        assert API_KEY not in repr(provider)
    error = caught.value
    assert error.status == 401
    assert error.body_excerpt == "Incorrect API key provided: ***."
    assert str(error) == "openai: HTTP 401: Incorrect API key provided: ***."
    assert error.provider == "openai"
    everything = "".join(traceback.format_exception(error)) + caplog.text
    assert "HTTP 500" in caplog.text  # the retry was logged...
    assert API_KEY not in everything  # ...without the key
    assert API_KEY[:12] not in everything


async def test_a_long_error_body_is_cut() -> None:
    fake = FakeOpenAI()
    fake.script = [Reply(400, "x" * 5000)]
    async with in_process(fake) as provider:
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(ask())
    assert caught.value.body_excerpt == "x" * 300 + "..."


def test_retry_after_parsing() -> None:
    def parse(**headers: str) -> float | None:
        return _retry_after(httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()}))

    assert parse() is None
    assert parse(retry_after="2.5") == 2.5
    assert parse(retry_after="-3") == 0
    assert parse(retry_after="soon") is None
    assert parse(retry_after="nan") is None
    assert parse(retry_after_ms="250", retry_after="9") == 0.25
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (parse(retry_after=in_a_minute) or 0) <= 61
    assert parse(retry_after=email.utils.formatdate(time.time() - 60, usegmt=True)) == 0


# --- construction and lifecycle ------------------------------------------------------------------


@pytest.mark.parametrize("base_url", [None, "", "   ", "api.openai.com/v1", "ftp://host/v1", 42])
def test_a_missing_or_bad_base_url_is_named(base_url: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        OpenAICompatibleProvider(base_url)
    assert caught.value.field == "base_url"
    assert "https://api.openai.com/v1" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff": -1}, "backoff"),
        ({"client": object()}, "client"),
        ({"max_tokens_param": "tokens"}, "max_tokens_param"),
        ({"default_headers": {"X": 1}}, "default_headers"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        OpenAICompatibleProvider("http://localhost:8000/v1", **options)
    assert caught.value.field == field


def test_a_bad_api_key_is_named_but_not_repeated() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        OpenAICompatibleProvider("http://localhost:8000/v1", api_key=["sk-oops-secret"])  # type: ignore[arg-type]
    assert caught.value.field == "api_key"
    assert "sk-oops-secret" not in str(caught.value)


def test_construction_needs_no_event_loop_and_creates_no_client() -> None:
    provider = OpenAICompatibleProvider("https://api.example.com/v1/", "sk-secret")
    assert provider._client is None
    assert provider.base_url == "https://api.example.com/v1"
    assert "sk-secret" not in repr(provider)
    assert provider.name == "openai"


async def test_an_owned_client_is_closed_on_exit() -> None:
    provider = OpenAICompatibleProvider(FAKE_URL)
    async with provider:
        client = provider._client
        assert client is not None
        assert not client.is_closed
    assert client.is_closed
    with pytest.raises(ProviderError, match="closed"):
        await provider.complete(ask())


async def test_a_lazily_created_client_is_closed_by_aclose() -> None:
    provider = OpenAICompatibleProvider("http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(ProviderError):
        await provider.complete(ask())  # nothing listens on port 9: the client was made anyway
    client = provider._client
    assert client is not None
    await provider.aclose()
    assert client.is_closed


async def test_a_given_client_is_left_open() -> None:
    fake = FakeOpenAI()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        async with OpenAICompatibleProvider(FAKE_URL, client=client) as provider:
            await provider.complete(ask())
        assert not client.is_closed


def test_request_body_checks_its_argument() -> None:
    provider = OpenAICompatibleProvider(FAKE_URL)
    with pytest.raises(InvalidArgumentError):
        provider.request_body({"model": "x"}, stream=False)  # type: ignore[arg-type]
