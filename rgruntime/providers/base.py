"""What a model provider is, and the two conversions between a stream and a completion.

:func:`collect` assembles a stream into the :class:`Completion` it amounts to (that is what a
cache stores); :func:`replay` turns a stored completion back into a stream, so that a cached
answer to a streaming call is served as a stream with the same text, tool calls, finish reason and
usage.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import attrs

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers.errors import ProviderProtocolError
from rgruntime.providers.types import (
    Completion,
    CompletionChunk,
    CompletionRequest,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["ModelProvider", "collect", "replay"]


@runtime_checkable
class ModelProvider(Protocol):
    """A source of completions: a remote API, a local server, or a simulation.

    ``stream(request)`` returns an async generator of chunks. It may hold a network response open
    until it ends, so a consumer that stops early must close it, which is what
    ``contextlib.aclosing`` is for::

        async with contextlib.aclosing(provider.stream(request)) as chunks:
            async for chunk in chunks:
                ...

    (Breaking out of a bare ``async for`` leaves the response open until the garbage collector
    finds the generator, on a schedule nobody controls.) :func:`collect` closes what it reads.
    """

    @property
    def name(self) -> str:
        """A short name for logs, errors and statistics (``"openai"``, ``"simulated"``)."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion:
        """The whole answer at once."""
        ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[CompletionChunk, None]:
        """The answer as it is produced. The model call starts when iteration starts."""
        ...


@attrs.define
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = attrs.field(factory=list)


async def collect(
    chunks: AsyncIterable[CompletionChunk], *, model: str | None = None
) -> Completion:
    """The completion a stream amounts to; closes the stream (also when it fails).

    Text deltas concatenate; tool-call deltas merge by index (the first ``id`` and ``name`` seen
    for an index win, argument pieces concatenate); the finish reason is the last one sent and the
    usage the last one sent (OpenAI sends it on the final chunk; a stream without usage gives
    ``Usage(0, 0)``). ``model`` is used when no chunk names the answering model.

    Raises :class:`ProviderProtocolError` if a streamed tool call never got a name. A call that
    never got an id (some compatible servers omit them) gets ``"call_<index>"``.
    """
    text: list[str] = []
    calls: dict[int, _PartialCall] = {}
    finish_reason: str | None = None
    usage: Usage | None = None
    try:
        async for chunk in chunks:
            text.append(chunk.text_delta)
            for delta in chunk.tool_call_deltas:
                partial = calls.setdefault(delta.index, _PartialCall())
                partial.id = partial.id or delta.id or None
                partial.name = partial.name or delta.name or None
                partial.arguments.append(delta.arguments)
            if chunk.finish_reason is not None:
                finish_reason = chunk.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.model:
                model = chunk.model
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    tool_calls = []
    for index in sorted(calls):
        partial = calls[index]
        if partial.name is None:
            raise ProviderProtocolError(f"streamed tool call {index} has no name")
        tool_calls.append(
            ToolCall(partial.id or f"call_{index}", partial.name, "".join(partial.arguments))
        )
    return Completion(
        "".join(text), tuple(tool_calls), usage or Usage(), finish_reason, model or ""
    )


def replay(
    completion: Completion, chunk_size: int = 16, *, delay: float = 0.0
) -> AsyncGenerator[CompletionChunk, None]:
    """A stream that :func:`collect` turns back into ``completion``.

    Text comes in pieces of ``chunk_size`` characters, then each tool call (its id and name with
    the first piece of its arguments, then the other pieces), then a last chunk with the finish
    reason and the usage. Every chunk names the model. ``delay`` seconds pass before each chunk
    (to pace a demo); with no delay each chunk is still a checkpoint, so a long replay neither
    hogs the event loop nor ignores cancellation.
    """
    # Checked here, not in the generator, so that a bad argument fails at the call.
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidArgumentError("chunk_size", chunk_size, "a positive number of characters")
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not math.isfinite(delay)
        or delay < 0
    ):
        raise InvalidArgumentError("delay", delay, "a number of seconds, 0 or more")
    return _replay(completion, chunk_size, float(delay))


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _replay(
    completion: Completion, chunk_size: int, delay: float
) -> AsyncGenerator[CompletionChunk, None]:
    model = completion.model or None
    chunks = [CompletionChunk(piece, model=model) for piece in _pieces(completion.text, chunk_size)]
    for index, call in enumerate(completion.tool_calls):
        first, *rest = _pieces(call.arguments, chunk_size) or [""]
        chunks.append(
            CompletionChunk(
                tool_call_deltas=(ToolCallDelta(index, call.id, call.name, first),), model=model
            )
        )
        chunks.extend(
            CompletionChunk(tool_call_deltas=(ToolCallDelta(index, arguments=piece),), model=model)
            for piece in rest
        )
    chunks.append(
        CompletionChunk(finish_reason=completion.finish_reason, usage=completion.usage, model=model)
    )
    for chunk in chunks:
        if delay:
            await anyio.sleep(delay)
        else:
            await anyio.lowlevel.checkpoint()
        yield chunk
