"""A stand-in for an OpenAI-compatible model, so that the integration examples run offline.

It serves ``POST /v1/chat/completions`` on a loopback port from a thread of the standard library's
HTTP server: it answers "Echo: <the last message>" (as a stream when asked), reports token usage,
counts the calls it answered, and can wait a little before answering (so that concurrent identical
requests overlap). Point any OpenAI client at ``server.url`` with any API key. A real model works
the same way: pass its ``base_url`` and key instead.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LocalModel", "local_model"]


class LocalModel:
    """The running stand-in: its ``url`` and how many ``calls`` it answered."""

    def __init__(self, url: str, delay: float) -> None:
        self.url = url
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)  # this server's own thread: the client's event loop goes on
        last = body["messages"][-1].get("content")
        text = f"Echo: {last if isinstance(last, str) else json.dumps(last)}"
        prompt = sum(len(json.dumps(message)) // 4 for message in body["messages"])
        return {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "local"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(text) // 4,
                "total_tokens": prompt + len(text) // 4,
            },
        }


def _chunks(completion: dict[str, Any], include_usage: bool) -> Iterator[dict[str, Any]]:
    text = completion["choices"][0]["message"]["content"]
    base = {"id": completion["id"], "object": "chat.completion.chunk", "model": completion["model"]}
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    for start in range(0, len(text), 8):
        delta = {"content": text[start : start + 8]}
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if include_usage:
        yield {**base, "choices": [], "usage": completion["usage"]}


def _handler(model: LocalModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            completion = model.answer(body)
            if not body.get("stream"):
                self._send(200, "application/json", json.dumps(completion).encode())
                return
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = [f"data: {json.dumps(chunk)}\n\n" for chunk in _chunks(completion, usage)]
            self._send(200, "text/event-stream", "".join([*events, "data: [DONE]\n\n"]).encode())

        def _send(self, status: int, kind: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return Handler


@contextlib.contextmanager
def local_model(delay: float = 0.2) -> Iterator[LocalModel]:
    """Serve the stand-in model while the block runs; stop it (and its thread) on exit."""
    model = LocalModel("", delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model))
    model.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, name="local model", daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
