"""A fake OpenAI-compatible chat completions server (starlette), and a way to serve it on a real
loopback socket with hypercorn on either backend.

By default it answers like a model would, deterministically: with a call of the first tool when
the request offers tools (and the last message is not a tool result), else with text echoing the
last message. ``FakeOpenAI.script`` holds replies that take precedence, one per request: error
statuses, Retry-After headers, malformed bodies, slow answers, raw event streams.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import httpx
import sniffio
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rgruntime.providers.openai import OpenAICompatibleProvider

TOOL_ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'
API_KEY = "sk-test-0123456789abcdef-SECRET"
FAKE_URL = "http://fake.test/v1"


@attrs.define
class Reply:
    """One scripted reply. ``body`` (a dict as JSON, or a str as it is) replaces the answer;
    ``events`` (raw ``data:`` payloads) or ``raw`` (the bytes of the event stream) replace a
    streamed answer. ``delay`` passes before the reply (ended early by ``release()``)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    events: list[str] | None = None
    raw: str | None = None
    event_delay: float = 0.0


@attrs.define
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@attrs.define
class Answer:
    text: str
    tool_calls: list[tuple[str, str, str]]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    model: str


def default_answer(body: dict[str, Any]) -> Answer:
    messages = body["messages"]
    last = messages[-1]
    prompt = sum(len(m.get("content") or "") for m in messages)
    if body.get("tools") and last["role"] != "tool" and body.get("tool_choice") != "none":
        name = body["tools"][0]["function"]["name"]
        calls = [("call_abc123", name, TOOL_ARGUMENTS)]
        return Answer("", calls, "tool_calls", prompt, len(TOOL_ARGUMENTS), body["model"])
    text = f"Echo: {last.get('content')}"
    return Answer(text, [], "stop", prompt, len(text), body["model"])


def completion_json(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in answer.tool_calls
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": answer.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
    }


def stream_events(answer: Answer, *, include_usage: bool) -> list[str]:
    """The answer as OpenAI streams it: a role chunk, content pieces, tool-call deltas (id and
    name first, then argument pieces), the finish reason, the usage chunk, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({"id": "c1", "model": answer.model, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": answer.text[i : i + 4]}) for i in range(0, len(answer.text), 4)]
    for index, (call_id, name, arguments) in enumerate(answer.tool_calls):
        first = {"index": index, "id": call_id, "type": "function"}
        events.append(
            chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]})
        )
        events += [
            chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 3]}}]}
            )
            for i in range(0, len(arguments), 3)
        ]
    events.append(chunk({}, answer.finish_reason))
    if include_usage:
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
        events.append(
            json.dumps({"id": "c1", "model": answer.model, "choices": [], "usage": usage})
        )
    events.append("[DONE]")
    return events


class FakeOpenAI:
    """The fake server's state. Build it inside a running event loop (it holds anyio events)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.events_sent = 0
        self.stream_ended = anyio.Event()
        self._released = anyio.Event()
        self.embedding_requests: list[Received] = []
        #: True: the embeddings endpoint answers 503 (an embedding service that is down).
        self.embeddings_down = False
        self._embedder: Any = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    def release(self) -> None:
        """End every pending ``delay`` now (a test calls it before it stops the server)."""
        self._released.set()

    async def _chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append(Received(dict(request.headers), body))
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            with anyio.move_on_after(reply.delay):
                await self._released.wait()
        if reply.status >= 400 or reply.body is not None:
            content = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            return Response(content, reply.status, reply.headers, "application/json")
        answer = default_answer(body)
        if not body.get("stream"):
            return JSONResponse(completion_json(answer), headers=reply.headers)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = reply.events or stream_events(answer, include_usage=include_usage)
        raw = reply.raw if reply.raw is not None else "".join(f"data: {e}\n\n" for e in events)
        return StreamingResponse(
            self._send_events(raw, reply.event_delay),
            headers=reply.headers,
            media_type="text/event-stream",
        )

    async def _embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings answer, with real sentence vectors (the local MiniLM model)."""
        from rgruntime.semantic import MiniLMEmbedder

        body = json.loads(await request.body())
        self.embedding_requests.append(Received(dict(request.headers), body))
        if self.embeddings_down:
            return JSONResponse({"error": {"message": "embeddings unavailable"}}, 503)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if self._embedder is None:
            self._embedder = MiniLMEmbedder()
        vectors = await self._embedder.embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": row.tolist()}
            for i, row in enumerate(vectors)
        ]
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})

    async def _send_events(self, raw: str, delay: float) -> AsyncIterator[str]:
        # One event per write (split where the events end), so that a client can stop mid-way.
        pieces = re.findall(r".*?\n\n|.+$", raw, re.DOTALL)
        try:
            for piece in pieces:
                if delay:
                    await anyio.sleep(delay)
                self.events_sent += 1
                yield piece
        finally:
            self.stream_ended.set()


@contextlib.asynccontextmanager
async def serve(fake: FakeOpenAI) -> AsyncIterator[str]:
    """Serve ``fake.app`` with hypercorn on a free loopback port; yields the API's base URL.

    hypercorn crashes when cancelled through a cancel scope: it runs shielded and stops through
    its shutdown trigger. The socket is bound here (so the port is known before hypercorn starts)
    and handed over by descriptor, detached so that only hypercorn closes it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 2.0
    config.errorlog = None
    config.accesslog = None
    shutdown = anyio.Event()

    async def run() -> None:
        with anyio.CancelScope(shield=True):
            if sniffio.current_async_library() == "trio":
                from hypercorn.trio import serve as serve_trio

                await serve_trio(fake.app, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
            else:
                from hypercorn.asyncio import serve as serve_asyncio

                await serve_asyncio(fake.app, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            fake.release()
            shutdown.set()


@contextlib.asynccontextmanager
async def in_process(fake: FakeOpenAI, **options: Any) -> AsyncIterator[OpenAICompatibleProvider]:
    """A provider that calls ``fake.app`` in process (``httpx.ASGITransport``): no socket, so
    virtual clocks work. ASGITransport buffers a whole response before returning it."""
    options.setdefault("api_key", API_KEY)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    async with client, OpenAICompatibleProvider(FAKE_URL, client=client, **options) as provider:
        yield provider
