"""A provider for any server that speaks OpenAI's chat completions API (OpenAI itself, Azure
OpenAI behind a compatible gateway, vLLM, Ollama, llama.cpp, Groq, Together, LiteLLM's proxy...).

It runs over ``httpx.AsyncClient``, which runs on anyio and so on asyncio and trio alike. The
client is created when the provider is entered (or at its first call), never at import time or in
``__init__``: an object made before an event loop runs must not be bound to one.

Failures: 429 and 5xx answers and connection failures are retried with exponential backoff and
jitter, waiting what ``Retry-After`` asks when the server says; other 4xx answers are not retried
(the same request would fail the same way). Read timeouts are not retried either: the server may
be working on the request, and a retry would pay for it twice. Nothing here logs or raises the API
key: it is sent in a header only, and scrubbed from response bodies quoted in errors.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Self, cast

import anyio
import httpx

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
)
from rgruntime.providers.types import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["OpenAICompatibleProvider"]

logger = logging.getLogger(__name__)

#: How much of an error body an exception quotes.
EXCERPT_CHARS: Final = 300

_DONE: Final = "[DONE]"

# Lines read after [DONE] before giving up on reaching the end of the body.
_DRAIN_LINES: Final = 16


class OpenAICompatibleProvider:
    """A :class:`~rgruntime.providers.ModelProvider` for an OpenAI-compatible HTTP API.

    ``base_url`` is the API root, the part before ``/chat/completions``
    (``"https://api.openai.com/v1"``, ``"http://localhost:11434/v1"``). ``api_key`` is sent as a
    bearer token when given. ``timeout`` bounds each attempt: the whole answer for
    :meth:`complete`, the response headers and then each wait between events for :meth:`stream`.
    ``max_retries`` is how many times a failed attempt may be repeated; the n-th retry waits about
    ``backoff * 2 ** n`` seconds (a random 50-100% of it, capped at ``max_backoff``), or what the
    server's ``Retry-After`` asks, up to ``max_retry_after`` (a longer wait is not retried).

    Use it as an async context manager, which owns (creates and closes) its ``httpx.AsyncClient``
    unless ``client`` is given; a provider used without ``async with`` creates its client at the
    first call and must be closed with :meth:`aclose`.

    ``max_tokens_param`` names the body field for ``request.max_tokens``: OpenAI's reasoning
    models want ``"max_completion_tokens"``. ``include_usage=False`` leaves out
    ``stream_options`` for servers that reject it (their streams then report no usage).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        name: str = "openai",
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        max_tokens_param: str = "max_tokens",
        include_usage: bool = True,
    ) -> None:
        self._base_url = _check_base_url(base_url)
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            # The value is not repeated: it may be most of a real key.
            raise InvalidArgumentError("api_key", "<hidden>", "None or a non-empty string")
        self._api_key = api_key
        self._timeout = _check_positive(timeout, "timeout")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError("max_retries", max_retries, "a whole number, 0 or more")
        self._max_retries = max_retries
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise InvalidArgumentError("client", client, "None or an httpx.AsyncClient")
        self._client = client
        self._owns_client = client is None
        self._closed = False
        headers = dict(default_headers or {})
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidArgumentError("default_headers", key, "a mapping of str to str")
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("name", name, "a non-empty string")
        self._name = name
        self._backoff = _check_positive(backoff, "backoff", zero=True)
        self._max_backoff = _check_positive(max_backoff, "max_backoff", zero=True)
        self._max_retry_after = _check_positive(max_retry_after, "max_retry_after", zero=True)
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise InvalidArgumentError(
                "max_tokens_param", max_tokens_param, "'max_tokens' or 'max_completion_tokens'"
            )
        self._max_tokens_param = max_tokens_param
        self._include_usage = bool(include_usage)
        # Jitter only spreads retries out: it needs no seed and no security.
        self._jitter = random.Random()

    @property
    def name(self) -> str:
        return self._name

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"OpenAICompatibleProvider({self._base_url!r}, api_key={key}, name={self._name!r})"

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._get_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client if this provider created it. The provider cannot be used after."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise ProviderError("the provider is closed", provider=self._name)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    # --- the two calls ---------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        body = self.request_body(request, stream=False)
        response = await self._send(body, stream=False)
        try:
            data = response.json()
        except ValueError:
            raise self._protocol_error("the answer is not JSON", response.text) from None
        return self._parse_completion(data, request)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[CompletionChunk, None]:
        body = self.request_body(request, stream=True)
        response = await self._send(body, stream=True)
        try:
            async with contextlib.aclosing(self._parse_stream(response, request)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            # Also when the consumer closes the stream early or is cancelled: shielded, so that
            # the connection is released even under cancellation (closing does not block).
            with anyio.CancelScope(shield=True):
                await response.aclose()

    # --- the wire format -------------------------------------------------------------------------

    def request_body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body of the chat completions call for ``request``."""
        if not isinstance(request, CompletionRequest):
            raise InvalidArgumentError("request", request, "a CompletionRequest")
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_message_json(message) for message in request.messages],
            "temperature": request.temperature,
        }
        if request.max_tokens is not None:
            body[self._max_tokens_param] = request.max_tokens
        if request.tools:
            body["tools"] = [{"type": "function", "function": t.to_dict()} for t in request.tools]
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = (
                choice
                if choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": choice}}
            )
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(request.to_dict()["extra"])
        if stream:
            body["stream"] = True
            if self._include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _parse_completion(self, data: Any, request: CompletionRequest) -> Completion:
        try:
            choice = _first_choice(data["choices"])
            message = choice["message"]
            calls = tuple(
                _tool_call(call, i) for i, call in enumerate(message.get("tool_calls") or ())
            )
            return Completion(
                _content(message.get("content")),
                calls,
                _usage(data.get("usage")) or Usage(),
                choice.get("finish_reason"),
                data.get("model") or request.model,
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            # ValueError covers InvalidArgumentError: a field of the wrong type or range.
            raise self._protocol_error("unexpected answer", json.dumps(data)) from None

    async def _parse_stream(
        self, response: httpx.Response, request: CompletionRequest
    ) -> AsyncGenerator[CompletionChunk, None]:
        events = _EventDecoder()
        done = finished = False
        after_done = 0
        try:
            # aiter_lines() is an async generator (typed as a mere iterator): close it too.
            lines_iterator = cast(AsyncGenerator[str, None], response.aiter_lines())
            async with contextlib.aclosing(lines_iterator) as lines:
                async for line in lines:
                    if done:
                        # Read on to the end of the body after [DONE] (a few bytes at most):
                        # httpx's inner generators then finish instead of being abandoned, which
                        # trio reports with a ResourceWarning.
                        after_done += 1
                        if after_done > _DRAIN_LINES:
                            break
                        continue
                    for data in events.feed(line):
                        if data == _DONE:
                            done = True
                            break
                        chunk = self._parse_chunk(data, request)
                        finished = finished or chunk.finish_reason is not None
                        yield chunk
            for data in () if done else events.flush():
                done = data == _DONE
                if not done:
                    chunk = self._parse_chunk(data, request)
                    finished = finished or chunk.finish_reason is not None
                    yield chunk
        except httpx.TimeoutException as error:
            raise ProviderTimeout(
                f"no event for {self._timeout:g} s while streaming", provider=self._name
            ) from error
        except httpx.TransportError as error:
            raise ProviderConnectionError(
                f"the connection failed while streaming: {_describe(error)}", provider=self._name
            ) from error
        # Some servers end without [DONE]: that is fine once the answer said it was finished.
        if not (done or finished):
            raise ProviderProtocolError(
                "the event stream ended before the answer finished (no [DONE])",
                provider=self._name,
            )

    def _parse_chunk(self, data: str, request: CompletionRequest) -> CompletionChunk:
        try:
            payload = json.loads(data)
        except ValueError:
            raise self._protocol_error("an event is not JSON", data) from None
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise ProviderError(
                f"the server reported an error mid-stream: {self._excerpt(data)}",
                provider=self._name,
            )
        try:
            # The final usage chunk has no choices; with n > 1, choices other than 0 are ignored.
            choices = [c for c in payload.get("choices") or () if c.get("index", 0) == 0]
            model = payload.get("model") or request.model
            usage = _usage(payload.get("usage"))
            if not choices:
                return CompletionChunk(usage=usage, model=model)
            choice = choices[0]
            delta = choice.get("delta") or {}
            deltas = tuple(
                ToolCallDelta(
                    call.get("index", i),
                    call.get("id") or None,
                    (call.get("function") or {}).get("name") or None,
                    _arguments((call.get("function") or {}).get("arguments")),
                )
                for i, call in enumerate(delta.get("tool_calls") or ())
            )
            return CompletionChunk(
                _content(delta.get("content")), deltas, choice.get("finish_reason"), usage, model
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise self._protocol_error("unexpected event", data) from None

    # --- sending, with retries -------------------------------------------------------------------

    async def _send(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        """A successful (2xx) response; with ``stream``, its body is still to be read."""
        client = self._get_client()
        url = f"{self._base_url}/chat/completions"
        headers = {**self._headers, "Accept": "text/event-stream" if stream else "application/json"}
        for attempt in range(self._max_retries + 1):
            retry_after: float | None = None
            try:
                http_request = client.build_request(
                    "POST", url, json=body, headers=headers, timeout=self._timeout
                )
                with anyio.fail_after(self._timeout):
                    response = await client.send(http_request, stream=stream)
                    if response.is_success:
                        return response
                    # An error body is short: read it (also of a stream) and release the
                    # connection before deciding.
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                retry_after = _retry_after(response.headers)
                error: ProviderError = ProviderHTTPError(
                    response.status_code,
                    self._excerpt(response.text),
                    provider=self._name,
                    retry_after=retry_after,
                )
                retryable = response.status_code == 429 or response.status_code >= 500
            except (httpx.ConnectError, httpx.ConnectTimeout) as failure:
                # The request never reached the server: repeating it is always safe.
                error = ProviderConnectionError(
                    f"cannot connect to {_origin(url)}: {_describe(failure)}", provider=self._name
                )
                error.__cause__ = failure
                retryable = True
            except (TimeoutError, httpx.TimeoutException) as failure:
                raise ProviderTimeout(
                    f"no answer within {self._timeout:g} s", provider=self._name
                ) from failure
            except httpx.TransportError as failure:
                raise ProviderConnectionError(
                    f"the connection to {_origin(url)} failed: {_describe(failure)}",
                    provider=self._name,
                ) from failure
            if not retryable or attempt == self._max_retries:
                raise error
            delay = self._delay(attempt, retry_after)
            if delay is None:
                raise error
            logger.warning(
                "%s; retry %d of %d in %.2f s", error, attempt + 1, self._max_retries, delay
            )
            await anyio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds before retry ``attempt + 1``, or None when the server asks for too long."""
        if retry_after is not None:
            return retry_after if retry_after <= self._max_retry_after else None
        ceiling = min(self._max_backoff, self._backoff * 2.0**attempt)
        return ceiling * self._jitter.uniform(0.5, 1.0)

    # --- errors ----------------------------------------------------------------------------------

    def _excerpt(self, text: str) -> str:
        """The useful start of an error body, with the API key scrubbed out."""
        message = text
        with contextlib.suppress(ValueError):
            payload = json.loads(text)
            if isinstance(payload, dict):
                error = payload.get("error")
                if isinstance(error, dict) and isinstance(error.get("message"), str):
                    message = error["message"]
                elif isinstance(error, str):
                    message = error
        message = " ".join(message.split())
        if self._api_key:
            message = message.replace(self._api_key, "***")
        if len(message) > EXCERPT_CHARS:
            message = message[:EXCERPT_CHARS] + "..."
        return message

    def _protocol_error(self, what: str, text: str) -> ProviderProtocolError:
        return ProviderProtocolError(f"{what}: {self._excerpt(text)!r}", provider=self._name)


# --- helpers -------------------------------------------------------------------------------------


def _check_base_url(base_url: object) -> str:
    accepted = "the API root URL, such as 'https://api.openai.com/v1' or 'http://localhost:8000/v1'"
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidArgumentError("base_url", base_url, accepted)
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError):
        raise InvalidArgumentError("base_url", base_url, accepted) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidArgumentError("base_url", base_url, accepted)
    return str(url).rstrip("/")


def _check_positive(value: object, field: str, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        accepted = "a number of seconds, 0 or more" if zero else "a positive number of seconds"
        raise InvalidArgumentError(field, value, accepted)
    return float(value)


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__


def _retry_after(headers: httpx.Headers) -> float | None:
    """The wait a 429 or 503 asks for: ``retry-after-ms`` (OpenAI's), or ``Retry-After`` in
    seconds or as an HTTP date."""
    with contextlib.suppress(ValueError):
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    with contextlib.suppress(TypeError, ValueError):
        # The server's wall clock against ours: the only meaning an HTTP date can have.
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _message_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        data["name"] = message.name
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    return data


def _first_choice(choices: Any) -> Any:
    return next((c for c in choices if c.get("index", 0) == 0), choices[0])


def _content(content: Any) -> str:
    """Message text: a string, None (a tool-calling answer) or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if part.get("type") == "text")
    raise TypeError(content)


def _arguments(arguments: Any) -> str:
    # A few compatible servers send the arguments as an object instead of a JSON string.
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments)


def _tool_call(call: Any, index: int) -> ToolCall:
    function = call["function"]
    return ToolCall(
        call.get("id") or f"call_{index}",
        function["name"],
        _arguments(function.get("arguments")) or "{}",
    )


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)


class _EventDecoder:
    """Server-Sent Events, line by line: yields the data of each complete event.

    Fields other than ``data`` (``event``, ``id``, ``retry``) and comments are ignored; several
    ``data`` lines of one event are joined with newlines, as the SSE specification says.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[str]:
        line = line.rstrip("\r\n")
        if not line:
            yield from self.flush()
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))

    def flush(self) -> Iterator[str]:
        if self._data:
            data, self._data = "\n".join(self._data), []
            yield data
