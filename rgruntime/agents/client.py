"""The caching guide's client: ``async with ResonantGenesis(...) as client:``.

Opening the client opens a :class:`~rgruntime.Runtime` (the five cache layers and their actors)
and, when the client owns them, its model providers. Namespaces: ``client.agents``,
``client.sessions``, ``client.cache``, ``client.models``, ``client.tools``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from rgruntime.agents.agent import Agent, AgentRegistry
from rgruntime.agents.arguments import check_id
from rgruntime.agents.codecs import register_client_codecs
from rgruntime.agents.config import (
    MemorySearch,
    SessionCacheConfig,
    check_embedder_runs,
    check_known_tools,
)
from rgruntime.agents.events import EventBus
from rgruntime.agents.execution import ExecutionResult, Executor
from rgruntime.agents.figures import ClientCacheStats, readable_stats
from rgruntime.agents.memory import MemoryAPI
from rgruntime.agents.models import ModelGateway, check_providers
from rgruntime.agents.operations import ClientOperations, OperationsMethods
from rgruntime.agents.savings import Savings, SavingsLedger
from rgruntime.agents.semantic_responses import SemanticResponses, uses_semantic_cache
from rgruntime.agents.services import ServiceGroup
from rgruntime.agents.sessions import Session, SessionStore
from rgruntime.agents.tools import RegisteredTool, ToolRegistry
from rgruntime.agents.warming import Warmer, WarmingMethods
from rgruntime.config import RuntimeConfig, parse_backend
from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.keys import digest
from rgruntime.observe.alerts import Alerts
from rgruntime.providers import (
    ModelProvider,
    OpenAICompatibleProvider,
    PriceTable,
    SimulatedProvider,
)
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.runtime import Runtime
from rgruntime.units import parse_duration

if TYPE_CHECKING:
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.records import SemanticStats

__all__ = ["CacheAPI", "ResonantGenesis", "SessionsAPI"]

T = TypeVar("T")

#: Layers whose entries a request may share with other agents' requests.
_SHARED_LAYERS = frozenset({"model", "tool"})


def _with_backend(
    cache_config: RuntimeConfig | Mapping[str, Any] | None, cache_backend: object
) -> RuntimeConfig | Mapping[str, Any] | None:
    """The runtime settings with the guide's ``cache_backend`` (checked here, so that an error
    names ``cache_backend.url`` as the guide writes it) as every layer's default backend."""
    backend = parse_backend(cache_backend, "cache_backend")
    if backend is None:
        return cache_config
    if isinstance(cache_config, RuntimeConfig):
        raise ConfigError(
            "cache_backend",
            cache_backend,
            "None when cache_config is a RuntimeConfig (give the RuntimeConfig a cache_backend)",
        )
    return {**(cache_config or {}), "cache_backend": backend}


def _is_embedder(candidate: object) -> bool:
    # Checked by shape: the Embedder protocol lives with numpy, which `import rgruntime` must
    # not import.
    return all(hasattr(candidate, name) for name in ("name", "dimension", "embed"))


def tool_tag(name: str) -> str:
    """The tag every cached result of the tool ``name`` carries (``@cache`` and agent loop)."""
    return f"tool:{name}"


def goal_tag(agent_id: str, goal: str) -> str:
    """The tag every cached answer of ``agent_id`` to ``goal`` carries (whatever its context)."""
    return f"agent:{agent_id}:goal:{digest(goal)}"


class SessionsAPI:
    """``client.sessions``: create and resume sessions, execute goals."""

    def __init__(
        self,
        agents: AgentRegistry,
        store: SessionStore,
        executor: Executor,
        events: EventBus | None = None,
        missed: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._agents = agents
        self._store = store
        self._events = events if events is not None else EventBus()
        self._executor = executor
        # Told (layer, agent id, goal) of every answer not served from the cache (diagnosis).
        self._missed = missed

    async def create(
        self,
        agent_id: str,
        cache_config: Mapping[str, Any] | SessionCacheConfig | None = None,
        *,
        session_id: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Session:
        """A new session with ``agent_id``, cached in the ``session`` layer."""
        agent = self._agents.get(agent_id)
        config = SessionCacheConfig.from_mapping(cache_config)
        session = await self._store.create(agent, config, session_id=session_id, state=state)
        await self._notify("session.created", session_id=session.id, agent_id=agent.id)
        return session

    async def resume(self, session_id: str, use_cache: bool = True) -> Session:
        """The cached session. ``use_cache=False`` keeps its state but starts a fresh history.

        Raises :class:`SessionNotFoundError` if it is unknown or its cache entry is gone.
        """
        _check_session_id(session_id)
        if not isinstance(use_cache, bool):
            raise InvalidArgumentError("use_cache", use_cache, "True or False")
        if use_cache:
            return await self._store.load(session_id)
        # Under the session's lock, as every write of its state: a turn in flight finishes
        # first, and cannot then write the old history back over the reset.
        async with self._store.lock(session_id):
            session = await self._store.load(session_id)
            fresh = Session(
                id=session.id,
                agent_id=session.agent_id,
                cache_config=session.cache_config,
                state=session.state,
                created_at=session.created_at,
            )
            await self._store.save(fresh)
        await self._notify("session.updated", session_id=fresh.id, agent_id=fresh.agent_id)
        return fresh

    async def delete(self, session_id: str) -> bool:
        """Remove the session (after a turn in flight); True if it existed."""
        _check_session_id(session_id)
        deleted = await self._store.delete(session_id)
        if deleted:
            await self._notify("session.deleted", session_id=session_id, agent_id=None)
        return deleted

    async def execute(
        self,
        agent_id: str,
        goal: str,
        session_id: str | None = None,
        cache: bool = True,
        cache_ttl: float | str | None = None,
        cache_tags: Iterable[str] = (),
    ) -> ExecutionResult:
        """Run ``agent_id`` for ``goal``; the answer comes from the cache when it can.

        With ``session_id``, the session's history is part of the conversation (and of the cache
        key), and the exchange is appended to it. ``cache=False`` skips every cache for this
        request; ``cache_ttl`` overrides the answer's TTL; ``cache_tags`` tag it.
        """
        agent = self._agents.get(agent_id)
        if session_id is not None:
            _check_session_id(session_id)
        if cache_ttl is not None:
            parse_duration(cache_ttl, field="cache_ttl", error=InvalidArgumentError)
        tags = [*_tag_list(cache_tags), goal_tag(agent.id, goal) if isinstance(goal, str) else ""]
        tags = [tag for tag in tags if tag]
        if session_id is None:
            result = await self._executor.execute(
                agent, goal, cache=cache, cache_ttl=cache_ttl, cache_tags=tags
            )
            self._executed(result, goal)
            return result
        async with self._store.lock(session_id):
            session = await self._store.load(session_id)
            if session.agent_id != agent.id:
                raise InvalidArgumentError(
                    "session_id", session_id, f"a session of agent {agent.id!r}"
                )
            result = await self._executor.execute(
                agent, goal, session=session, cache=cache, cache_ttl=cache_ttl, cache_tags=tags
            )
            await self._store.save(session.after_turn(goal, result.output))
        self._executed(result, goal)
        # After the session's lock is released: a handler may run a turn of this session.
        await self._notify("session.updated", session_id=session_id, agent_id=agent.id)
        return result

    async def _notify(self, event: str, **data: Any) -> None:
        if self._events.is_open:
            await self._events.emit(event, **data)

    def _executed(self, result: ExecutionResult, goal: str) -> None:
        # Queued, never awaited: a cache hit must not wait for anyone's handlers.
        if result.cache_key is None:
            return  # no cache took part (cache=False, or caching off for the agent)
        event = "cache.hit" if result.cached and result.layer == "response" else "cache.miss"
        if event == "cache.miss" and self._missed is not None:
            self._missed("response", result.agent_id, goal)
        if self._events.has_handlers(event):
            self._events.emit_nowait(
                event, layer="response", agent_id=result.agent_id, key=result.cache_key, goal=goal
            )


def _check_session_id(session_id: object) -> None:
    check_id("session_id", session_id, "sess_123")


def _key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError("key", key, "a cache key (a non-empty string)")
    return key


def _tag_list(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        raise InvalidArgumentError("cache_tags", tags, "a list of tags such as ['products']")
    return list(tags)


class CacheAPI(WarmingMethods, OperationsMethods):
    """``client.cache``: read, delete and invalidate entries; statistics and savings; warming
    (``warm``, ``schedule_warming``: :class:`~rgruntime.agents.warming.WarmingMethods`)."""

    def __init__(
        self,
        runtime: Runtime,
        ledger: SavingsLedger,
        warmer: Warmer | None = None,
        changes: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        operations: ClientOperations | None = None,
    ) -> None:
        self._runtime = runtime
        self._ledger = ledger
        self._warmer = warmer
        self._ops = operations
        # Answers removed inside it are computed afresh when asked again (Executor).
        self._changes = changes

    async def get(self, key: str, *, layer: str = "response", default: Any = None) -> Any:
        """The value cached under ``key`` in ``layer``, or ``default``."""
        return await self._layer(layer).get(_key(key), default)

    async def delete(self, key: str, *, layer: str = "response") -> bool:
        """Remove ``key`` from ``layer``; returns once what depended on it has gone too."""
        target = self._layer(layer)
        key = _key(key)
        with self._changes():
            deleted = await target.delete(key)
            await self._runtime.dependencies.settled()
        return deleted

    async def invalidate(
        self,
        *,
        agent_id: str | None = None,
        key: str | None = None,
        pattern: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> int:
        """Remove entries as the guide shows; returns how many went.

        - ``agent_id=...``: everything cached for that agent, in every layer;
        - ``agent_id=..., key=...``: that agent's cached answers to the goal ``key`` (in every
          session context); a full cache key (``response:...``) is removed as it is;
        - ``pattern="weather_*"``: keys matching the glob, in every layer;
        - ``tags=[...]``: entries with those tags or tags below them, in every layer.

        The next identical request computes its answer again: what its run wrote (model
        outputs, tool results) carries its agent, goal and tags, and the model outputs and tool
        results it reads are computed again once (``rgruntime.tools.scope``).
        """
        with self._changes():
            return await self._invalidate(agent_id=agent_id, key=key, pattern=pattern, tags=tags)

    async def _invalidate(
        self,
        *,
        agent_id: str | None,
        key: str | None,
        pattern: str | None,
        tags: Iterable[str] | None,
    ) -> int:
        if agent_id is not None:
            check_id("agent_id", agent_id, "agent_123")
            if key is not None:
                _key(key)
            if pattern is not None or tags is not None:
                raise InvalidArgumentError(
                    "agent_id",
                    agent_id,
                    "agent_id alone or with key= (pattern= and tags= apply to every agent)",
                )
            if key is None:
                return await self._runtime.invalidate(tags=[f"agent:{agent_id}"])
            if key.startswith("response:"):
                return await self._runtime.invalidate(key=key)
            return await self._runtime.invalidate(tags=[goal_tag(agent_id, key)])
        return await self._runtime.invalidate(key=key, pattern=pattern, tags=tags)

    def _layer(self, name: object) -> Layer:
        if not isinstance(name, str):
            raise InvalidArgumentError(
                "layer", name, f"a layer name: {', '.join(self._runtime.layers)}"
            )
        return self._runtime.layer(name)

    def get_stats(self) -> ClientCacheStats:
        """Counters summed over the layers (each layer's in ``.layers``); rates are percentages
        that print with one decimal. The top-level ``hit_rate`` counts every layer's lookups;
        the share of requests answered from the cache is ``.layers["response"].hit_rate``."""
        return readable_stats(self._runtime.stats())

    def get_semantic_stats(self) -> dict[str, SemanticStats]:
        """Semantic lookups by ``"<layer>:<embedder>"``: hits, misses by cause, rejections by
        reason, and the histogram of hit similarities."""
        if not self._runtime.is_open:
            raise RuntimeClosedError("the client is not open")
        try:
            from rgruntime.semantic import semantic_stats
        except ImportError:  # without the semantic extra no index can have started
            return {}
        return semantic_stats(self._runtime)

    def get_savings(self, period: float | str = "30d") -> Savings:
        """Responses served from the cache, tokens and cost saved over ``period``."""
        return self._ledger.savings(period)

    def _warming(self) -> Warmer:
        # warm and schedule_warming (WarmingMethods) use the client's Warmer, while it is open.
        return _opened(self._warmer)

    def _operations(self) -> ClientOperations:
        # get_metrics, analyze, diagnose... (OperationsMethods), while the client is open.
        return _opened(self._ops)


class ResonantGenesis:
    """The caching guide's client (see the module documentation).

    ``api_key`` and ``base_url`` configure an OpenAI-compatible provider as the default one;
    without ``base_url`` the default provider is the offline :class:`SimulatedProvider`.
    ``providers`` maps model names to providers of their own. ``prices`` extends or overrides
    the bundled price table (LiteLLM's JSON shape). ``embedder`` is the embedding model of
    semantic caching for agents whose ``semantic_cache`` names none (an
    :class:`~rgruntime.semantic.Embedder` or a registered name; default: the local
    all-MiniLM-L6-v2); OpenAI embedding models use ``base_url`` and ``api_key``. It also embeds
    the agents' memories (``client.memory``), unless ``memory_search`` (an async function
    ``(agent_id, query, k) -> results``) searches a memory store of your own for every agent.
    """

    def __init__(
        self,
        api_key: str | None = None,
        cache_config: RuntimeConfig | Mapping[str, Any] | None = None,
        cache_backend: Mapping[str, Any] | None = None,
        *,
        base_url: str | None = None,
        provider: ModelProvider | None = None,
        providers: Mapping[str, ModelProvider] | None = None,
        prices: Mapping[str, Any] | None = None,
        default_model: str = "sim-small",
        embedder: Embedder | str | None = None,
        memory_search: MemorySearch | None = None,
    ) -> None:
        cache_config = _with_backend(cache_config, cache_backend)
        if memory_search is not None and not callable(memory_search):
            raise ConfigError(
                "memory_search", memory_search, "an async function (agent_id, query, k) -> results"
            )
        self._memory_search = memory_search
        if embedder is not None and not isinstance(embedder, str) and not _is_embedder(embedder):
            raise ConfigError(
                "embedder", embedder, "an embedder name or an object with name, dimension, embed()"
            )
        if isinstance(embedder, str):
            check_embedder_runs("embedder", embedder, base_url=base_url, api_key=api_key)
        self._embedder = embedder
        self._base_url = base_url
        self._api_key = api_key
        self._runtime = Runtime(cache_config)
        register_client_codecs(self._runtime.codecs)  # its answers survive a warm restart
        self._providers = check_providers(providers)
        if provider is not None and not isinstance(provider, ModelProvider):
            raise ConfigError("provider", provider, "a ModelProvider (complete(), stream(), name)")
        self._own_provider = provider is None
        if provider is None:
            provider = (
                OpenAICompatibleProvider(base_url, api_key)
                if base_url is not None
                else SimulatedProvider()
            )
        self._provider = provider
        self._prices = (
            PriceTable.default() if prices is None else PriceTable.default().extend(prices)
        )
        self._ledger = SavingsLedger()
        self.tools = ToolRegistry(on_replace=self._tool_replaced, on_update=self._tool_updated)
        #: ``client.events``: usable before the client opens (to register handlers).
        self.events = EventBus()
        #: ``client.alerts``: usable before the client opens; evaluated while it is open.
        self.alerts = Alerts(time.time)
        self.agents = AgentRegistry(
            default_model,
            on_update=self._agent_updated,
            on_delete=self._agent_deleted,
            on_create=self._agent_created,
            max_response_ttl=self._runtime.config.layers["response"].max_ttl,
            max_tool_ttl=self._runtime.config.layers["tool"].max_ttl,
            check=self._check_agent,
        )
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._sessions: SessionsAPI | None = None
        self._cache: CacheAPI | None = None
        self._models: ModelGateway | None = None
        self._executor: Executor | None = None
        self._semantic: SemanticResponses | None = None
        self._memory: MemoryAPI | None = None
        self._warmer: Warmer | None = None

    async def __aenter__(self) -> ResonantGenesis:
        async with contextlib.AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(self._runtime)
            # Monitors and the metrics task first: they see every access from the start.
            operations = ClientOperations(runtime, self._ledger, self.alerts)
            await operations.start()
            stack.callback(operations.close)
            if self._own_provider and hasattr(self._provider, "__aenter__"):
                await stack.enter_async_context(self._provider)  # type: ignore[arg-type]
            self._models = ModelGateway(
                runtime.layer("model"), self._provider, self._providers, self._prices, self._ledger
            )
            semantic = SemanticResponses(
                runtime, embedder=self._embedder, base_url=self._base_url, api_key=self._api_key
            )
            stack.push_async_callback(semantic.aclose)
            self._semantic = semantic
            self._executor = Executor(
                runtime.layer("response"),
                self._models,
                self.tools,
                self._ledger,
                semantic=semantic,
                runtime=runtime,
            )
            self._sessions = SessionsAPI(
                self.agents,
                SessionStore(runtime.layer("session")),
                self._executor,
                self.events,
                missed=operations.request_missed,
            )
            # Entered last, so closed first: handlers and schedules end before the runtime does.
            services = await stack.enter_async_context(ServiceGroup())
            self.events.attach(services, runtime.layers.values())
            stack.callback(self.events.detach)
            self._warmer = Warmer(self.agents, self._sessions, runtime.layer("response"), services)
            stack.callback(self._warmer.close)
            self._cache = CacheAPI(
                runtime,
                self._ledger,
                self._warmer,
                changes=self._executor.change_window,
                operations=operations,
            )
            self._memory = MemoryAPI(
                runtime,
                self.agents,
                self.events,
                embedder=self._embedder,
                search=self._memory_search,
                changes=self._executor.change_window,
                missed=operations.request_missed,
            )
            for agent in self.agents.list():  # agents created before the client opened
                await self._memory.preload_configured(agent)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._exit_stack is not None
        self._sessions = self._cache = None
        self._models = self._executor = None
        self._memory = None
        self._warmer = None
        return await self._exit_stack.__aexit__(exc_type, exc, traceback)

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    @property
    def sessions(self) -> SessionsAPI:
        return _opened(self._sessions)

    @property
    def cache(self) -> CacheAPI:
        return _opened(self._cache)

    @property
    def models(self) -> ModelGateway:
        return _opened(self._models)

    @property
    def memory(self) -> MemoryAPI:
        return _opened(self._memory)

    async def serve_api(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        tokens: Any = None,
    ) -> Any:
        """Serve the HTTP API (``rgruntime.api``, the ``api`` extra) in the runtime's task
        group until the client closes; returns an :class:`~rgruntime.api.ApiServer` (``.url``).

        ``tokens``: ``[Token(value, "read" | "admin")]`` or ``{value: scope}``; the client's
        ``api_key`` is an admin token too. Without any token only a loopback host is accepted.
        """
        from rgruntime.api import TokenSet, serve_api

        _opened(self._cache)
        return await serve_api(self, TokenSet.of(tokens, api_key=self._api_key), host, port)

    @classmethod
    def blocking(cls, *args: Any, backend: str = "asyncio", **kwargs: Any) -> Any:
        """A blocking client for scripts and notebooks (see :func:`rgruntime.connect`)."""
        from rgruntime.agents.blocking import BlockingClient

        return BlockingClient(lambda: cls(*args, **kwargs), backend=backend)

    def _check_agent(self, agent: Agent) -> None:
        """What an agent's configuration needs from this client, checked when it is given."""
        check_known_tools("tools", agent.tools, self.tools.__contains__)
        if not uses_semantic_cache(agent):
            return
        name = agent.cache_config.semantic_cache.embedding_model
        if name is None and self._embedder is not None:
            return  # the client's embedder, checked when the client was made
        check_embedder_runs(
            "cache_config.semantic_cache.embedding_model",
            name,
            base_url=self._base_url,
            api_key=self._api_key,
        )

    async def _agent_updated(self, old: Agent, new: Agent) -> None:
        # The version is in every response key, so old answers can never be served again:
        # remove them now instead of letting them wait for their TTL. Sessions stay.
        # A runtime that is not open holds nothing to remove (client.agents works without it).
        # auto_invalidate.on_agent_update=False leaves them to their TTL.
        if self._runtime.is_open and new.cache_config.auto_invalidate.on_agent_update:
            with self._change_window():
                await self._runtime.layer("response").invalidate(tags=[f"agent:{old.id}"])
                await self._runtime.dependencies.settled()
        if self._memory is not None:
            await self._memory.agent_updated(old, new)
        await self._notify("agent.updated", agent_id=new.id, version=new.version)

    async def _agent_deleted(self, agent: Agent) -> None:
        if self._runtime.is_open:
            # Everything cached for it, except the model outputs and tool results its runs
            # wrote: other agents may share them, and deleting an agent changes no data.
            for name, layer in self._runtime.layers.items():
                if name not in _SHARED_LAYERS:
                    await layer.invalidate(tags=[f"agent:{agent.id}"])
            await self._runtime.dependencies.settled()
        if self._executor is not None:
            self._executor.forget_agent(agent.id)
        if self._memory is not None:
            self._memory.forget_agent(agent.id)
        await self._notify("agent.deleted", agent_id=agent.id, version=agent.version)

    async def _agent_created(self, agent: Agent) -> None:
        if self._semantic is not None:
            try:
                # An embedder that cannot run fails here, naming what is missing, not at the
                # agent's first request.
                await self._semantic.prepare(agent)
            except Exception:
                await self.agents.delete(agent.id)
                raise
        if self._memory is not None:
            await self._memory.preload_configured(agent)
        await self._notify("agent.created", agent_id=agent.id, version=agent.version)

    def _tool_replaced(self, tool: RegisteredTool) -> None:
        # client.tools.register() of a taken name (synchronous): the tool's version is in its
        # results' keys, so the new function never gets the old results; the graph's task
        # removes them, and the answers that used them, at once (tools.update() waits for it).
        if self._runtime.is_open:
            self._runtime.dependencies.invalidate_soon([tool_tag(tool.name)])
        self.events.emit_nowait("tool.updated", tool=tool.name, version=tool.version)

    async def _tool_updated(self, tool: RegisteredTool) -> None:
        # Its cached results go, and with them (through the dependency graph) the answers of
        # agents with auto_invalidate.on_tool_update that used them.
        if self._runtime.is_open:
            with self._change_window():
                await self._runtime.invalidate(tags=[tool_tag(tool.name)])
        await self._notify("tool.updated", tool=tool.name, version=tool.version)

    def _change_window(self) -> contextlib.AbstractContextManager[None]:
        return (
            self._executor.change_window()
            if self._executor is not None
            else contextlib.nullcontext()
        )

    async def _notify(self, event: str, **data: Any) -> None:
        # Agents and tools change with the client closed too: then nobody is listening.
        if self.events.is_open:
            await self.events.emit(event, **data)


def _opened(namespace: T | None) -> T:
    if namespace is None:
        raise RuntimeClosedError(
            "the client is not open: use it inside `async with ResonantGenesis(...) as client:` "
            "(or rgruntime.connect(...) for a blocking client)"
        )
    return namespace
