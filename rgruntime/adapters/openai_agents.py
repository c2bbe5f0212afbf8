"""OpenAI Agents: a ``Model`` wrapper that caches through rgruntime
(``pip install 'rgruntime[openai-agents]'``).

    from agents import Agent, OpenAIChatCompletionsModel
    from rgruntime.adapters.openai_agents import CachedModel

    model = CachedModel(OpenAIChatCompletionsModel("gpt-4o", client), runtime, semantic=True)
    agent = Agent(name="Support", instructions="...", model=model)

- The key holds everything the SDK hands a model: the system instructions, the input items, the
  model settings, the tools' and handoffs' schemas, the output schema, the server-side
  conversation ids and the prompt. Tool call ids and item ids in the input are replaced by their
  order of appearance first: they only pair a call with its output, and a conversation that
  continued from a cached answer (whose ids were re-minted) must key as the original did.
- **Tool call ids are re-minted on every hit.** The SDK treats a call id as one invocation for
  the lifetime of a run: a replayed response carrying the ids of the run that produced it could
  be taken for a call already executed and skipped.
- A hit reports zero usage (``requests=0``, no tokens) to the run; the adapter's ``stats()``
  records the tokens it saved.
- ``get_response`` calls share one model call (single flight). ``stream_response`` replays a
  cached answer as a stream (created, output items with their text deltas, completed) and caches
  a fresh stream once it has completed; streams do not wait for each other.
- Semantic matching (``semantic=True``) compares the last user message among requests that agree
  on everything else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from rgruntime.adapters.common import (
    AdapterCache,
    AdapterStats,
    CachedRequest,
    Outcome,
    jsonable,
    split_last_user,
)
from rgruntime.errors import ConfigError

if TYPE_CHECKING:
    from agents.agent_output import AgentOutputSchemaBase
    from agents.handoffs import Handoff
    from agents.model_settings import ModelSettings
    from agents.models.interface import ModelTracing
    from agents.tool import Tool
    from openai.types.responses.response_prompt_param import ResponsePromptParam

    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.runtime import Runtime

__all__ = ["CachedModel"]

#: The id the SDK's Chat Completions model gives the responses it builds.
_PLACEHOLDER_ID: Final = "__fake_id__"
_TOOL_SCHEMA_FIELDS: Final = (
    "description",
    "params_json_schema",
    "strict_json_schema",
    "tool_description",
    "input_json_schema",
    "type",
)


def _normalized(value: Any, call_ids: dict[str, str]) -> Any:
    """JSON ``value`` with call ids replaced by their order of appearance, and item ids and
    unset (None) fields left out (a replayed item may spell out what the original left unset)."""
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if key == "id" or item is None:
                continue
            if key == "call_id" and isinstance(item, str):
                result[key] = call_ids.setdefault(item, f"call#{len(call_ids)}")
            else:
                result[key] = _normalized(item, call_ids)
        return result
    if isinstance(value, list):
        return [_normalized(item, call_ids) for item in value]
    return value


def _tool_schema(tool: Any) -> dict[str, Any]:
    schema = {"name": getattr(tool, "name", None) or getattr(tool, "tool_name", None)}
    schema["kind"] = type(tool).__name__
    for field in _TOOL_SCHEMA_FIELDS:
        if hasattr(tool, field):
            schema[field] = jsonable(getattr(tool, field))
    return schema


def _output_schema(schema: AgentOutputSchemaBase | None) -> Any:
    if schema is None or schema.is_plain_text():
        return None
    return [schema.name(), schema.json_schema(), schema.is_strict_json_schema()]


def _remint(output: Iterable[Any]) -> list[Any]:
    """Copies of ``output`` items, each tool call with a new call id."""
    copies = []
    for item in output:
        copy = item.model_copy(deep=True)
        if isinstance(getattr(copy, "call_id", None), str):
            copy.call_id = f"call_{uuid.uuid4().hex[:24]}"
        copies.append(copy)
    return copies


def _zero_usage() -> ResponseUsage:
    return ResponseUsage(
        input_tokens=0,
        input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
        output_tokens=0,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        total_tokens=0,
    )


@attrs.frozen
class _Answer:
    """A model's answer as cached: its output items and response id (usage lives in Stored)."""

    output: tuple[Any, ...]
    response_id: str | None
    tokens: int


@attrs.frozen
class _ModelCall:
    """The arguments of one model call, to key it and to pass it on to the wrapped model."""

    system_instructions: str | None
    input: str | list[TResponseInputItem]
    model_settings: ModelSettings
    tools: list[Tool]
    output_schema: AgentOutputSchemaBase | None
    handoffs: list[Handoff]
    tracing: ModelTracing
    previous_response_id: str | None
    conversation_id: str | None
    prompt: ResponsePromptParam | None

    def _arguments(self) -> tuple[Any, ...]:
        return (
            self.system_instructions,
            self.input,
            self.model_settings,
            self.tools,
            self.output_schema,
            self.handoffs,
            self.tracing,
        )

    def _options(self) -> dict[str, Any]:
        return {
            "previous_response_id": self.previous_response_id,
            "conversation_id": self.conversation_id,
            "prompt": self.prompt,
        }

    async def get_response(self, model: Model) -> ModelResponse:
        return await model.get_response(*self._arguments(), **self._options())

    def stream_response(self, model: Model) -> AsyncIterator[TResponseStreamEvent]:
        return model.stream_response(*self._arguments(), **self._options())


def _answer(output: list[Any], response_id: str | None, tokens: int) -> _Answer:
    # Copies: the run goes on to use (and may change) the objects it was given.
    return _Answer(tuple(item.model_copy(deep=True) for item in output), response_id, tokens)


class CachedModel(Model):
    """An OpenAI Agents model whose answers come from rgruntime when it holds them.

    ``model``: the model to wrap (``OpenAIChatCompletionsModel``, ``OpenAIResponsesModel``, any
    ``Model``). ``cache``: a :class:`~rgruntime.Runtime` or :class:`~rgruntime.ResonantGenesis`.
    ``semantic``, ``ttl``, ``tags``, ``layer``: as :class:`~rgruntime.adapters.AdapterCache`.
    """

    def __init__(
        self,
        model: Model,
        cache: Runtime | ResonantGenesis,
        *,
        layer: str = "model",
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        semantic: bool | Mapping[str, Any] = False,
        name: str | None = None,
    ) -> None:
        if not isinstance(model, Model):
            raise ConfigError(
                "model", model, "an agents Model to wrap (OpenAIChatCompletionsModel...)"
            )
        self.inner = model
        inner_name = getattr(model, "model", None)
        self.model = name or (inner_name if isinstance(inner_name, str) else type(model).__name__)
        self.cache = AdapterCache(
            cache, namespace="openai_agents", layer=layer, ttl=ttl, tags=tags, semantic=semantic
        )

    def stats(self) -> AdapterStats:
        return self.cache.stats()

    def get_default_model_settings(self) -> ModelSettings | None:
        return self.inner.get_default_model_settings()

    async def close(self) -> None:
        await self.inner.close()

    def _request(self, call: _ModelCall) -> CachedRequest:
        given = call.input
        items = _normalized(
            jsonable([{"role": "user", "content": given}] if isinstance(given, str) else given), {}
        )
        text, rest = split_last_user(items)
        context = {
            "instructions": call.system_instructions,
            "settings": jsonable(call.model_settings.to_json_dict()),
            "tools": [_tool_schema(tool) for tool in call.tools],
            "handoffs": [_tool_schema(handoff) for handoff in call.handoffs],
            "output": _output_schema(call.output_schema),
            "previous_response_id": call.previous_response_id,
            "conversation_id": call.conversation_id,
            "prompt": jsonable(call.prompt),
        }
        return self.cache.request(
            model=self.model,
            exact={**context, "input": items},
            context={**context, "input": rest},
            text=text,
        )

    def _replayed(self, outcome: Outcome) -> ModelResponse:
        answer: _Answer = outcome.value
        return ModelResponse(
            output=_remint(answer.output), usage=Usage(), response_id=answer.response_id
        )

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        call = _ModelCall(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id,
            conversation_id,
            prompt,
        )
        request = self._request(call)
        fresh: list[ModelResponse] = []

        async def ask() -> _Answer:
            response = await call.get_response(self.inner)
            fresh.append(response)
            return _answer(response.output, response.response_id, response.usage.total_tokens)

        outcome = await self.cache.fetch(
            request,
            ask,
            tokens_of=lambda answer: int(answer.tokens),
            cacheable=lambda answer: bool(answer.output),
        )
        if fresh:
            return fresh[0]  # this caller's own call: the response as the model gave it
        return self._replayed(outcome)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        call = _ModelCall(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id,
            conversation_id,
            prompt,
        )
        request = self._request(call)
        hit = await self.cache.begin(request, join=False)
        if hit is not None:
            for event in self._replay_events(self._replayed(hit)):
                yield event
            return
        completed: Response | None = None
        stream = call.stream_response(self.inner)
        try:
            async for event in stream:
                if isinstance(event, ResponseCompletedEvent):
                    completed = event.response
                yield event
        finally:
            await _aclose(stream)
        if completed is None or not completed.output:
            await self.cache.finish(request, None, 0, cacheable=False)
            return
        tokens = completed.usage.total_tokens if completed.usage else 0
        await self.cache.finish(request, _answer(completed.output, completed.id, tokens), tokens)

    def _replay_events(self, response: ModelResponse) -> list[TResponseStreamEvent]:
        """A cached answer as the events a stream of it would carry: created, each output item
        (a message's text as one delta), completed with zero usage."""

        def whole(output: list[Any]) -> Response:
            return Response(
                id=response.response_id or _PLACEHOLDER_ID,
                created_at=time.time(),
                model=self.model,
                object="response",
                output=output,
                tool_choice="auto",
                tools=[],
                parallel_tool_calls=False,
                top_p=None,
                temperature=None,
                usage=_zero_usage(),
            )

        sequence = iter(range(1_000_000))
        events: list[Any] = [
            ResponseCreatedEvent(
                response=whole([]), sequence_number=next(sequence), type="response.created"
            )
        ]
        for index, item in enumerate(response.output):
            events.append(
                ResponseOutputItemAddedEvent(
                    item=item,
                    output_index=index,
                    sequence_number=next(sequence),
                    type="response.output_item.added",
                )
            )
            if isinstance(item, ResponseOutputMessage):
                for part_index, part in enumerate(item.content):
                    text = getattr(part, "text", None)
                    if isinstance(text, str) and text:
                        events.append(
                            ResponseTextDeltaEvent(
                                content_index=part_index,
                                delta=text,
                                item_id=item.id,
                                logprobs=[],
                                output_index=index,
                                sequence_number=next(sequence),
                                type="response.output_text.delta",
                            )
                        )
            events.append(
                ResponseOutputItemDoneEvent(
                    item=item,
                    output_index=index,
                    sequence_number=next(sequence),
                    type="response.output_item.done",
                )
            )
        events.append(
            ResponseCompletedEvent(
                response=whole(list(response.output)),
                sequence_number=next(sequence),
                type="response.completed",
            )
        )
        return events


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
