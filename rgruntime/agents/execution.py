"""``client.sessions.execute``: run an agent for a goal, answering from the ``response`` layer when
it can.

The response key hashes what the guide lists (agent id, goal, model, temperature, enabled tools)
and everything else that shapes the answer: the agent's version, its system prompt, the tools'
schemas, the session's conversation so far, and the key format's version. Concurrent identical
requests run the agent once (the layer's single flight). Empty, errored, truncated or filtered
answers are returned but never cached.

While a run that may be cached goes, the model outputs, tool results and memory lookups it reads
are recorded; its answer depends on them (:mod:`rgruntime.runtime.dependencies`): when any of
them leaves the cache, the answer does too. A run during which something it read left the cache
is returned but not cached.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from rgruntime.agents.agent import Agent
from rgruntime.agents.models import UNCACHEABLE_FINISH, ModelGateway, is_cacheable
from rgruntime.agents.runner import AgentOutput, RunContext, builtin_loop
from rgruntime.agents.savings import SavingsLedger
from rgruntime.agents.semantic_responses import (
    SemanticResponses,
    semantic_partition,
    uses_semantic_cache,
)
from rgruntime.agents.sessions import Session
from rgruntime.agents.tools import ToolRegistry
from rgruntime.agents.trimming import AgentEntries
from rgruntime.errors import InvalidArgumentError
from rgruntime.keys import stable_key
from rgruntime.providers import Message, Usage
from rgruntime.runtime.arguments import check_tags
from rgruntime.runtime.dependencies import recording
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.runtime import use_runtime
from rgruntime.tools.scope import request_scope

if TYPE_CHECKING:
    from rgruntime.runtime.removals import RemovalReason
    from rgruntime.runtime.runtime import Runtime

#: Answers invalidated and not yet asked again, remembered for a fresh run: at most this many
#: (the oldest are forgotten: their next run may then use cached model outputs).
MAX_PENDING_REFRESH = 65536

#: Removals that say the answer's data changed (capacity and expiry do not).
_CHANGES: frozenset[str] = frozenset({"invalidated", "deleted", "cleared"})

__all__ = ["CachedResponse", "ExecutionResult", "Executor", "response_key"]


@attrs.frozen(kw_only=True)
class CachedResponse:
    """What the ``response`` layer holds: the answer and what producing it cost."""

    output: str
    finish_reason: str | None
    usage: Usage
    cost: float
    model: str
    created_at: float


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """What happened for one ``execute`` call.

    ``cached`` is True when no model was called for this request: ``layer`` says which layer
    answered (``"response"``, or ``"model"`` when every model call of a fresh run hit the model
    cache) and ``match`` how (``"exact"``, or ``"semantic"``: the answer of a similar goal, whose
    cosine ``similarity`` in [0, 1] is given). ``usage`` and ``cost`` are what this request spent;
    ``tokens_saved`` and ``cost_saved`` what the cache saved it; ``latency`` is in seconds;
    ``model_calls`` how many calls reached a model provider (model-cache hits not counted).
    """

    output: str
    cached: bool
    layer: str | None
    match: str | None
    similarity: float | None
    usage: Usage
    cost: float
    latency: float
    tokens_saved: int
    cost_saved: float
    finish_reason: str | None
    agent_id: str
    session_id: str | None
    cache_key: str | None
    model_calls: int
    #: True when the answer is an expired one, served because computing a fresh one failed
    #: (the response layer's ``stale_if_error``); ``error`` is then that failure.
    stale: bool = False
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)


def response_material(
    agent: Agent, goal: str, tool_schemas: Sequence[object], history: Iterable[Message]
) -> dict[str, Any]:
    """Everything the response key of ``goal`` for ``agent`` hashes (the module documentation)."""
    return {
        "agent_id": agent.id,
        "goal": goal,
        "model": agent.model,
        "temperature": agent.temperature,
        "tools": sorted(agent.tools),
        "agent_version": agent.version,
        "system_prompt": agent.system_prompt,
        "tool_schemas": tool_schemas,
        "context": [message.to_dict() for message in history],
    }


def response_lineage(material: dict[str, Any]) -> str:
    """What stays the same for an answer across versions of its agent: an answer invalidated by
    an update of the agent is recomputed fresh by the new version too."""
    return stable_key(
        f"lineage:{material['agent_id']}",
        {k: v for k, v in material.items() if k != "agent_version"},
    )


def response_key(
    agent: Agent, goal: str, tool_schemas: Sequence[object], history: Iterable[Message]
) -> str:
    """The response cache key of ``goal`` for ``agent`` (see the module documentation)."""
    return stable_key(f"response:{agent.id}", response_material(agent, goal, tool_schemas, history))


class _Uncacheable(Exception):
    """Raised by a response load to hand its answer back without caching it."""

    #: A handed-back answer, not a failure: the layer must not answer with a stale copy.
    stale_if_error = False

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result


class Executor:
    """Runs agents for goals with response caching (used by ``client.sessions``)."""

    def __init__(
        self,
        layer: Layer,
        models: ModelGateway,
        tools: ToolRegistry,
        ledger: SavingsLedger,
        clock: Callable[[], float] = anyio.current_time,
        semantic: SemanticResponses | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self._runtime = runtime
        self._layer = layer
        self._semantic = semantic
        self._models = models
        self._tools = tools
        self._ledger = ledger
        self._clock = clock
        # Each agent's cached answers, oldest first, for response_cache.max_entries.
        self._entries = AgentEntries(layer)
        # Invalidation means a fresh answer: the lineage of each cached answer, and the
        # lineages whose answer a change removed (their next run reads no cached model output
        # or tool result: tools.scope). Only removals made while a change runs count (a
        # change_window): a model output replaced by a fresh run removes, by the dependency
        # graph, the answers of other agents that shared it, and those must not in turn force
        # fresh runs (two agents would then refresh each other's outputs forever).
        self._lineage: dict[str, str] = {}
        self._refresh: OrderedDict[str, None] = OrderedDict()
        self._changing = 0
        layer.add_removal_listener(self._removed)

    @contextlib.contextmanager
    def change_window(self) -> Iterator[None]:
        """Answers removed inside (an invalidation and what it cascades to) are computed
        afresh when asked again."""
        self._changing += 1
        try:
            yield
        finally:
            self._changing -= 1

    def _removed(self, layer: str, key: str, reason: RemovalReason) -> None:
        if reason == "replaced":
            return
        lineage = self._lineage.pop(key, None)
        if lineage is not None and self._changing and reason in _CHANGES:
            self._refresh[lineage] = None
            if len(self._refresh) > MAX_PENDING_REFRESH:
                self._refresh.popitem(last=False)

    async def execute(
        self,
        agent: Agent,
        goal: str,
        *,
        session: Session | None = None,
        cache: bool = True,
        cache_ttl: float | str | None = None,
        cache_tags: Iterable[str] = (),
    ) -> ExecutionResult:
        if not isinstance(goal, str) or not goal.strip():
            raise InvalidArgumentError("goal", goal, "a non-empty string")
        if not isinstance(cache, bool):
            raise InvalidArgumentError("cache", cache, "True or False")
        tags = check_tags(cache_tags, "cache_tags") | {f"agent:{agent.id}"}
        started = self._clock()
        history = session.history if session is not None else ()
        if not (cache and agent.cache_config.caches_responses):
            with request_scope(tags):
                return await self._run(
                    agent, goal, history, session, started, key=None, cache=cache
                )

        tool_schemas = [self._tools.spec(name).to_dict() for name in agent.tools]
        material = response_material(agent, goal, tool_schemas, history)
        key = stable_key(f"response:{agent.id}", material)
        lineage: str | None = None  # computed on a miss only: hits pay no second hash
        ttl = cache_ttl if cache_ttl is not None else agent.cache_config.response_ttl
        fresh: ExecutionResult | None = None
        semantic = self._semantic if uses_semantic_cache(agent) else None
        partition = semantic_partition(material) if semantic is not None else ""
        pending = None
        if semantic is not None and key not in self._layer:
            # An exact miss: a similar goal's answer, in the same partition, may serve, or be
            # verified against the fresh answer (the error-bound mode).
            found = await semantic.lookup(agent, partition, goal)
            hit, pending = found.hit, found.pending
            if hit is not None:
                return self._cached_result(
                    agent, session, started, hit.key, hit.value, "semantic", hit.similarity
                )

        async def produce() -> CachedResponse:
            nonlocal fresh, lineage
            lineage = response_lineage(material)
            graph = self._runtime.dependencies if self._runtime is not None else None
            ignored = agent.cache_config.auto_invalidate.ignored_layers()
            refresh = lineage in self._refresh
            with recording(graph, ignored) as reads, request_scope(tags, refresh=refresh):
                fresh = await self._run(agent, goal, history, session, started, key=key, cache=True)
                if not is_cacheable(fresh.output, fresh.finish_reason) or reads.tainted:
                    raise _Uncacheable(fresh)
                if graph is not None and not graph.depend((self._layer.name, key), reads):
                    raise _Uncacheable(fresh)
            return CachedResponse(
                output=fresh.output,
                finish_reason=fresh.finish_reason,
                usage=fresh.usage,
                cost=fresh.cost,
                model=agent.model,
                created_at=time.time(),
            )

        try:
            answer = await self._layer.lookup(key, produce, ttl=ttl, tags=tags)
        except _Uncacheable as uncached:
            return fresh if fresh is not None else self._shared(uncached.result, session, started)
        cached = answer.value
        if answer.stale:  # computing a fresh answer failed; the expired one answers, marked
            return attrs.evolve(
                self._cached_result(agent, session, started, key, cached, "exact", None),
                stale=True,
                error=answer.error,
            )
        if key in self._layer:
            # Counted once it is stored: a load discarded by an invalidation cached nothing.
            self._entries.remember(agent.id, key, agent.cache_config.response_cache.max_entries)
            if lineage is not None:
                self._lineage[key] = lineage
                self._refresh.pop(lineage, None)
        if fresh is not None:
            if semantic is not None:
                await semantic.remember(agent, partition, key, goal)
                if pending is not None:
                    usage, cost = await semantic.settle(agent, pending, fresh.output, self._models)
                    fresh = attrs.evolve(fresh, usage=fresh.usage + usage, cost=fresh.cost + cost)
            return fresh
        # Answered by the cache, or by an identical request already running: nothing spent.
        return self._cached_result(agent, session, started, key, cached, "exact", None)

    def _shared(
        self, result: ExecutionResult, session: Session | None, started: float
    ) -> ExecutionResult:
        """An identical request ran it (maybe for another session with the same history): this
        one shares its answer, not its session, nor what it spent."""
        return attrs.evolve(
            result,
            session_id=session.id if session is not None else None,
            usage=Usage(),
            cost=0.0,
            tokens_saved=0,
            cost_saved=0.0,
            model_calls=0,
            latency=self._clock() - started,
        )

    def _cached_result(
        self,
        agent: Agent,
        session: Session | None,
        started: float,
        key: str,
        cached: CachedResponse,
        match: str,
        similarity: float | None,
    ) -> ExecutionResult:
        self._ledger.record_hit("response", cached.usage.total_tokens, cached.cost)
        return ExecutionResult(
            output=cached.output,
            cached=True,
            layer="response",
            match=match,
            similarity=similarity,
            usage=Usage(),
            cost=0.0,
            latency=self._clock() - started,
            tokens_saved=cached.usage.total_tokens,
            cost_saved=cached.cost,
            finish_reason=cached.finish_reason,
            agent_id=agent.id,
            session_id=session.id if session is not None else None,
            cache_key=key,
            model_calls=0,
        )

    async def _run(
        self,
        agent: Agent,
        goal: str,
        history: tuple[Message, ...],
        session: Session | None,
        started: float,
        *,
        key: str | None,
        cache: bool,
    ) -> ExecutionResult:
        context = RunContext(
            agent, goal, history, self._models, self._tools, cache=cache, runtime=self._runtime
        )
        runner = agent.runner or builtin_loop
        if self._runtime is not None:
            # A @cache-decorated tool the runner calls caches in this client's runtime.
            with use_runtime(self._runtime):
                output = await runner(context)
        else:
            output = await runner(context)
        if isinstance(output, str):
            # A bare string does not say how it ended: if the last model answer was cut short
            # or filtered, so is this one (most runners return that answer's text).
            reason = context.last_finish_reason
            output = AgentOutput(
                text=output, finish_reason=reason if reason in UNCACHEABLE_FINISH else "stop"
            )
        elif not isinstance(output, AgentOutput):
            raise InvalidArgumentError(
                f"the runner of agent {agent.id!r} returned", output, "a str or an AgentOutput"
            )
        usage = context.usage + output.usage
        from_model_cache = context.model_calls > 0 and context.model_hits == context.model_calls
        return ExecutionResult(
            output=output.text,
            cached=from_model_cache,
            layer="model" if from_model_cache else None,
            match="exact" if from_model_cache else None,
            similarity=None,
            usage=usage,
            cost=context.cost + self._models.cost_of(agent.model, output.usage),
            latency=self._clock() - started,
            tokens_saved=context.tokens_saved,
            cost_saved=context.cost_saved,
            finish_reason=output.finish_reason,
            agent_id=agent.id,
            session_id=session.id if session is not None else None,
            cache_key=key,
            model_calls=context.model_calls - context.model_hits,
        )

    def forget_agent(self, agent_id: str) -> None:
        self._entries.forget(agent_id)
