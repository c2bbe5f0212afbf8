"""Running an agent for one goal: the context a runner gets, and the built-in loop.

A runner is either the user's own (an async callable from their framework, given to
``agents.create(runner=...)``) or :func:`builtin_loop`, which alternates model calls and tool
calls until the model answers. Either way, model calls made through ``context.complete`` go
through the ``model`` layer, and the context adds up what they cost and what cache hits saved.

Tool calls made through ``context.call_tool`` go through the ``tool`` layer: a tool's own
``@cache`` settings, with the agent's ``tool_cache_config`` for that tool on top; the agent's
``cache_config.tool_cache=False`` (or ``enabled=False``, or ``execute(cache=False)``) runs every
tool uncached. Model answers and tool results used are recorded as what the answer depends on
(:mod:`rgruntime.runtime.dependencies`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from rgruntime.agents.agent import Agent, AgentOutput
from rgruntime.agents.config import ToolCacheOverride
from rgruntime.agents.models import ModelGateway
from rgruntime.agents.tools import ToolRegistry
from rgruntime.errors import InvalidArgumentError
from rgruntime.providers import Completion, CompletionRequest, Message, ToolCall, Usage
from rgruntime.tools import cache_info
from rgruntime.tools.base import ToolContext
from rgruntime.tools.caching import CallPlan, ToolCacheSettings, cached_call

if TYPE_CHECKING:
    from rgruntime.runtime.runtime import Runtime

__all__ = ["AgentOutput", "RunContext", "Runner", "builtin_loop"]

#: Model turns the built-in loop takes before giving up (the answer is then not cached).
MAX_STEPS: Final = 8


class RunContext(ToolContext):
    """What a runner gets for one goal.

    ``messages()`` is the conversation to send (system prompt, the session's history, the goal);
    ``complete()`` asks the agent's model through the cache; ``call_tool()`` runs a registered tool.
    """

    def __init__(
        self,
        agent: Agent,
        goal: str,
        history: Sequence[Message],
        models: ModelGateway,
        tools: ToolRegistry,
        *,
        cache: bool,
        runtime: Runtime | None = None,
    ) -> None:
        self.agent = agent
        self._runtime = runtime
        self.goal = goal
        self.history = tuple(history)
        self._models = models
        self._tools = tools
        self._cache = cache
        self.usage = Usage()
        self.cost = 0.0
        self.tokens_saved = 0
        self.cost_saved = 0.0
        self.model_calls = 0
        self.model_hits = 0
        #: How the last model answer ended (a runner returning a bare string inherits it).
        self.last_finish_reason: str | None = None

    def messages(self) -> list[Message]:
        system = [Message("system", self.agent.system_prompt)] if self.agent.system_prompt else []
        return [*system, *self.history, Message("user", self.goal)]

    def request(
        self, messages: Iterable[Message] | None = None, **options: Any
    ) -> CompletionRequest:
        """A request to the agent's model with its temperature and tools (``options`` override)."""
        settings: dict[str, Any] = {
            "model": self.agent.model,
            "temperature": self.agent.temperature,
            "tools": [self._tools.spec(name) for name in self.agent.tools],
        }
        settings.update(options)
        return CompletionRequest(messages=list(messages or self.messages()), **settings)

    async def complete(
        self, messages: Iterable[Message] | None = None, **options: Any
    ) -> Completion:
        """Ask the agent's model (through the ``model`` layer unless caching is off)."""
        use_cache = self._cache and self.agent.cache_config.enabled
        request = self.request(messages, **options)
        call = await self._models.complete(request, cache=use_cache)
        # The gateway recorded the read of the model output (a dependency of the answer).
        self.model_calls += 1
        self.last_finish_reason = call.completion.finish_reason
        if call.cached:
            self.model_hits += 1
            self.tokens_saved += call.tokens_saved
            self.cost_saved += call.cost_saved
        else:
            self.usage += call.completion.usage
            self.cost += call.cost
        return call.completion

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run the registered tool ``name`` with ``arguments``, through the tool cache."""
        if name not in self.agent.tools:
            raise InvalidArgumentError(
                "tool", name, f"one of the agent's tools: {', '.join(self.agent.tools) or 'none'}"
            )
        tool = self._tools.get(name)
        config = self.agent.cache_config
        if self._runtime is None or not (self._cache and config.enabled and config.tool_cache):
            return await tool.function(**arguments)
        plan = tool_plan(tool.function, self.agent.tool_cache_config.get(name), name)
        return await cached_call(
            plan, (), dict(arguments), runtime=self._runtime, name=name, version=tool.version
        )


def tool_plan(
    function: Callable[..., Awaitable[Any]], override: ToolCacheOverride | None, name: str
) -> CallPlan:
    """How the agent loop caches ``function``: its ``@cache`` settings (else the defaults), with
    the agent's override on top. The function called is the undecorated one, so that the
    result is cached once, under the registered tool's name."""
    info = cache_info(function)
    settings = info.settings if info is not None else ToolCacheSettings()
    target: Callable[..., Awaitable[Any]] = function
    if info is not None:
        target = info.function
        owner = getattr(function, "__self__", None)
        if owner is not None:  # a bound method of a Tool: bind the undecorated function too
            target = info.function.__get__(owner)
    where = f"tool_cache_config.{name}"
    if override is not None:
        settings = settings.merged(where, **override.options())
    return CallPlan.of(target, settings, where, "cache_key_params")


async def builtin_loop(context: RunContext) -> AgentOutput:
    """Ask the model; run the tools it calls; repeat until it answers (at most ``MAX_STEPS``)."""
    messages = context.messages()
    completion: Completion | None = None
    for _ in range(MAX_STEPS):
        completion = await context.complete(messages)
        if not completion.tool_calls:
            return AgentOutput(text=completion.text, finish_reason=completion.finish_reason)
        messages.append(completion.to_message())
        for call in completion.tool_calls:
            messages.append(
                Message("tool", _tool_result(await _run_tool(context, call)), tool_call_id=call.id)
            )
    return AgentOutput(text=completion.text if completion else "", finish_reason="max_steps")


async def _run_tool(context: RunContext, call: ToolCall) -> Any:
    try:
        return await context.call_tool(call.name, call.parse_arguments())
    except InvalidArgumentError as error:
        # The model asked for something impossible: tell it, as APIs do, and let it recover.
        return {"error": str(error)}


def _tool_result(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, default=str)


#: An agent framework's own loop: gets the goal and the cached model/tool helpers, returns the
#: answer (a string, or an AgentOutput with usage and finish reason).
Runner = Callable[[RunContext], Awaitable["str | AgentOutput"]]
