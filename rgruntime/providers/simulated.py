"""A provider that needs no network: deterministic answers, simulated latency, scripted tool
calls and injected failures, for tests, demos and benchmarks of the caches in front of a model.

The answer to a request is a function of the request's key material and the provider's seed, so
equal requests get equal answers in every process (the property a cache relies on), and different
requests (another temperature, another tool schema) get different ones.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

import anyio
import xxhash

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers.base import replay
from rgruntime.providers.errors import ProviderHTTPError
from rgruntime.providers.types import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    Message,
    ToolCall,
    Usage,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "SimulatedProvider",
    "ToolScript",
    "estimate_prompt_tokens",
    "estimate_tokens",
]

#: The rule of thumb for English text with OpenAI's tokenizers.
CHARS_PER_TOKEN: Final = 4

#: What decides the tool calls of an answer: a mapping from tool name to the call's arguments (a
#: dict, or a function of the request returning one), or a function of the request returning
#: ``(tool name, arguments)`` pairs (arguments as a dict or a JSON string), empty for none.
ToolScript: TypeAlias = (
    Mapping[str, Mapping[str, Any] | Callable[[CompletionRequest], Mapping[str, Any]]]
    | Callable[[CompletionRequest], Iterable[tuple[str, Mapping[str, Any] | str]] | None]
)

# Overheads of OpenAI's chat format: tokens per message, and priming of the reply.
_PER_MESSAGE: Final = 4
_REPLY_PRIMING: Final = 3

# A word list reads better as text than as 72 quoted strings.
_WORDS: Final = (  # noqa: SIM905
    "the cache answer model agent request token memory tool result session layer value time "
    "cost hit miss policy entry data query user system response context key store fast small "
    "large simple clear stable recent useful cheap warm cold fresh again first next every each "
    "should will can may returns keeps finds sends reads writes checks saves uses makes helps "
    "because while when after before so and but with from for about into"
).split()


def estimate_tokens(text: str) -> int:
    """About one token per :data:`CHARS_PER_TOKEN` characters (at least 1 for non-empty text).

    A documented estimate, not a tokenizer: good enough to make costs and budgets realistic.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def _message_tokens(message: Message) -> int:
    tokens = _PER_MESSAGE + estimate_tokens(message.content or "")
    tokens += estimate_tokens(message.name or "") + estimate_tokens(message.tool_call_id or "")
    for call in message.tool_calls:
        tokens += estimate_tokens(call.name) + estimate_tokens(call.arguments)
    return tokens


def estimate_prompt_tokens(request: CompletionRequest) -> int:
    """Estimated prompt tokens: each message's text and overhead, and each tool's JSON."""
    tools = sum(estimate_tokens(json.dumps(tool.to_dict())) for tool in request.tools)
    return sum(map(_message_tokens, request.messages)) + tools + _REPLY_PRIMING


def _check_seconds(value: object, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidArgumentError(field, value, "a number of seconds, 0 or more")
    return float(value)


def _check_rate(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgumentError(field, value, "a probability from 0 to 1")
    return float(value)


def _check_whole(value: object, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(field, value, f"a whole number, {minimum} or more")
    return value


class SimulatedProvider:
    """A deterministic, offline :class:`~rgruntime.providers.ModelProvider`.

    - **Answers**: 12 to 48 words (``words``) drawn from a small vocabulary by hashing the
      request's key material with ``seed`` (xxhash: stable across processes). ``max_tokens`` cuts
      the answer (``finish_reason="length"``); a ``stop`` string ends it early.
    - **Time**: ``latency`` seconds before the answer (before the first chunk of a stream), plus
      ``completion_tokens / tokens_per_second`` when that is set, spread over a stream's chunks.
      Sleeps go through ``anyio.sleep``, so tests can run them in virtual time.
    - **Tokens**: estimated with :func:`estimate_tokens` (about 4 characters per token), plus
      OpenAI's per-message overhead for the prompt.
    - **Tool calls**: ``tool_script`` decides them (see :data:`ToolScript`). A mapping calls each
      of its tools that the request offers, except when ``tool_choice`` is ``"none"`` or names
      another tool, and except after a tool result (the last message has role ``"tool"``): then
      the model answers in text, which ends an agent loop. A function decides freely; it may only
      call tools the request offers. Calls have deterministic ids and ``finish_reason
      "tool_calls"``.
    - **Failures**: the first ``fail_first`` calls fail, then each call draws once from an RNG
      seeded with ``seed``: with probability ``error_rate`` it raises
      :class:`ProviderHTTPError` (``error_status``, 503 by default), with ``empty_rate`` it answers
      ``""``, with ``truncate_rate`` it returns half its answer with ``finish_reason="length"``.

    ``calls`` counts model calls (a stream counts when its iteration starts) and ``last_request``
    is the last request seen.
    """

    def __init__(
        self,
        latency: float = 0.05,
        tokens_per_second: float | None = None,
        seed: int = 0,
        *,
        name: str = "simulated",
        words: tuple[int, int] = (12, 48),
        chunk_size: int = 16,
        tool_script: ToolScript | None = None,
        error_rate: float = 0.0,
        empty_rate: float = 0.0,
        truncate_rate: float = 0.0,
        fail_first: int = 0,
        error_status: int = 503,
    ) -> None:
        self._latency = _check_seconds(latency, "latency")
        if tokens_per_second is not None and (
            isinstance(tokens_per_second, bool)
            or not isinstance(tokens_per_second, int | float)
            or not math.isfinite(tokens_per_second)
            or tokens_per_second <= 0
        ):
            raise InvalidArgumentError(
                "tokens_per_second", tokens_per_second, "None or a positive number"
            )
        self._tokens_per_second = tokens_per_second
        self._seed = _check_whole(seed, "seed", 0)
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("name", name, "a non-empty string")
        self._name = name
        if (
            not isinstance(words, tuple)
            or len(words) != 2
            or _check_whole(words[0], "words", 1) > _check_whole(words[1], "words", 1)
        ):
            raise InvalidArgumentError("words", words, "a (minimum, maximum) pair, 1 <= min <= max")
        self._words = words
        self._chunk_size = _check_whole(chunk_size, "chunk_size", 1)
        if tool_script is not None and not (
            isinstance(tool_script, Mapping) or callable(tool_script)
        ):
            raise InvalidArgumentError(
                "tool_script",
                tool_script,
                "None, a mapping of tool name to arguments, or a function",
            )
        self._tool_script = tool_script
        self._error_rate = _check_rate(error_rate, "error_rate")
        self._empty_rate = _check_rate(empty_rate, "empty_rate")
        self._truncate_rate = _check_rate(truncate_rate, "truncate_rate")
        if self._error_rate + self._empty_rate + self._truncate_rate > 1:
            raise InvalidArgumentError(
                "error_rate + empty_rate + truncate_rate",
                self._error_rate + self._empty_rate + self._truncate_rate,
                "a total probability of at most 1",
            )
        self._fail_first = _check_whole(fail_first, "fail_first", 0)
        if (
            isinstance(error_status, bool)
            or not isinstance(error_status, int)
            or not (400 <= error_status <= 599)
        ):
            raise InvalidArgumentError(
                "error_status", error_status, "an HTTP error status, 400-599"
            )
        self._error_status = error_status
        self._rng = random.Random(seed)
        self.calls = 0
        self.last_request: CompletionRequest | None = None

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"SimulatedProvider(name={self._name!r}, latency={self._latency}, seed={self._seed})"

    async def complete(self, request: CompletionRequest) -> Completion:
        completion = await self._answer(request)
        await anyio.sleep(self._generation_time(completion))
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[CompletionChunk, None]:
        completion = await self._answer(request)
        # The generation time is spread over the chunks by their share of the answer's
        # characters, so a stream takes exactly as long as complete() does.
        generation = self._generation_time(completion)
        size = _chunk_chars(completion) or 1
        async with contextlib.aclosing(replay(completion, self._chunk_size)) as chunks:
            async for chunk in chunks:
                if generation:
                    await anyio.sleep(generation * _chunk_chars(chunk) / size)
                yield chunk

    # --- the answer ------------------------------------------------------------------------------

    async def _answer(self, request: CompletionRequest) -> Completion:
        """Count the call, roll for failures and build the answer, then wait the latency (a
        failure too comes back after a round trip)."""
        try:
            completion = self._build(request)
        except ProviderHTTPError:
            await anyio.sleep(self._latency)
            raise
        await anyio.sleep(self._latency)
        return completion

    def _build(self, request: CompletionRequest) -> Completion:
        if not isinstance(request, CompletionRequest):
            raise InvalidArgumentError("request", request, "a CompletionRequest")
        self.calls += 1
        self.last_request = request
        # One draw per call, whatever the rates, so that the failure schedule of a seed does not
        # change when another rate is switched on.
        roll = self._rng.random()
        if self.calls <= self._fail_first or roll < self._error_rate:
            raise ProviderHTTPError(self._error_status, "simulated failure", provider=self._name)
        digest = request.fingerprint()
        prompt = estimate_prompt_tokens(request)
        calls = self._tool_calls(request, digest)
        if calls:
            completion_tokens = sum(
                estimate_tokens(call.name) + estimate_tokens(call.arguments) for call in calls
            )
            return Completion(
                "", calls, Usage(prompt, completion_tokens), "tool_calls", request.model
            )

        text, finish_reason = self._text(request, digest), "stop"
        roll -= self._error_rate
        if roll < self._empty_rate:
            text = ""
        elif roll - self._empty_rate < self._truncate_rate:
            text, finish_reason = text[: len(text) // 2], "length"
        if request.max_tokens is not None and estimate_tokens(text) > request.max_tokens:
            text, finish_reason = text[: request.max_tokens * CHARS_PER_TOKEN], "length"
        return Completion(
            text, (), Usage(prompt, estimate_tokens(text)), finish_reason, request.model
        )

    def _text(self, request: CompletionRequest, digest: str) -> str:
        def draw(i: int) -> int:
            return xxhash.xxh3_64_intdigest(f"{digest}:{i}".encode(), seed=self._seed)

        low, high = self._words
        count = low + draw(-1) % (high - low + 1)
        sentences: list[list[str]] = [[]]
        for i in range(count):
            value = draw(i)
            sentences[-1].append(_WORDS[value % len(_WORDS)])
            # About one sentence end per eight words, never after the last word (added below).
            if (value >> 32) % 8 == 0 and len(sentences[-1]) > 2 and i < count - 1:
                sentences.append([])
        text = " ".join(" ".join(words).capitalize() + "." for words in sentences)
        for stop in request.stop:
            text = text.split(stop, 1)[0]
        return text

    def _tool_calls(self, request: CompletionRequest, digest: str) -> tuple[ToolCall, ...]:
        script = self._tool_script
        if script is None or not request.tools or request.tool_choice == "none":
            return ()
        chosen: list[tuple[str, Mapping[str, Any] | str]]
        if isinstance(script, Mapping):
            if request.messages[-1].role == "tool":
                return ()
            chosen = [
                (name, arguments(request) if callable(arguments) else arguments)
                for name, arguments in script.items()
                if request.tool(name) is not None
                and request.tool_choice in (None, "auto", "required", name)
            ]
        else:
            chosen = list(script(request) or ())
        calls = []
        for i, (name, arguments) in enumerate(chosen):
            if request.tool(name) is None:
                raise InvalidArgumentError(
                    "tool_script",
                    name,
                    f"a tool the request offers: {', '.join(t.name for t in request.tools)}",
                )
            encoded = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
            calls.append(ToolCall(f"call_{digest[:20]}_{i}", name, encoded))
        return tuple(calls)

    def _generation_time(self, completion: Completion) -> float:
        if self._tokens_per_second is None:
            return 0.0
        return completion.usage.completion_tokens / self._tokens_per_second


def _chunk_chars(item: Completion | CompletionChunk) -> int:
    """The characters an answer or chunk carries: text and tool-call names and arguments."""
    if isinstance(item, Completion):
        return len(item.text) + sum(len(c.name) + len(c.arguments) for c in item.tool_calls)
    return len(item.text_delta) + sum(
        len(d.name or "") + len(d.arguments) for d in item.tool_call_deltas
    )
