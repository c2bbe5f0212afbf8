"""``client.memory``: each agent's memories, searched by meaning, lookups cached in the ``memory``
layer.

```python
memory_id = await client.memory.add("agent_123", "Refunds take 5 days.", {"source": "policy"})
results = await client.memory.search("agent_123", "how long do refunds take?", k=5)
results[0].text, results[0].similarity, results[0].metadata, results[0].id
await client.memory.preload(agent_id="agent_123", queries=["company policies"], concurrency=8)
await client.memory.delete("agent_123", memory_id)
```

**The store.** Built in: one partition per agent (:class:`~rgruntime.semantic.PartitionIndex`:
an exact numpy search while it holds up to 2,048 memories, an hnswlib graph above), vectors from
the client's embedder (``ResonantGenesis(embedder=...)``: the local all-MiniLM-L6-v2 by default,
``"hashing"`` for tests). Embedding, searches and index writes run in worker threads behind the
semantic package's limiters, never on the event loop. **Pluggable:** an async function
``search(agent_id, query, k)`` given as ``ResonantGenesis(memory_search=...)`` (every agent) or
``memory_config={"search": ...}`` (one agent, wins) replaces the built-in store for searches; such
an agent's memories live in the user's store, so ``add``/``delete`` refuse it: change your store,
then call ``client.memory.invalidate(agent_id)``.

**The cache.** A search is cached in the ``memory`` layer under its agent, query and ``k``, tagged
``agent:<id>:memory`` (so ``client.cache.invalidate(agent_id=...)`` removes it with the rest of
the agent's entries), per ``memory_config["cache"]`` (``enabled``, ``ttl``, ``max_entries``,
``preload``...) and the agent's ``cache_config["memory_cache"]`` (both must allow it). A cached
search read during an agent's execution is recorded as a dependency of the response
(``rgruntime.runtime.dependencies.record_read_of``), so invalidating it invalidates that
response; a lookup that went stale while it ran leaves the response uncached.

**Changes.** With ``auto_invalidate.on_memory_update`` (the agent's ``cache_config``), adding or
deleting a memory invalidates the agent's cached lookups (and, through the dependency graph, the
responses that used them) once the change is searchable. Each change emits ``memory.added`` /
``memory.deleted`` (and ``memory.invalidated``) on ``client.events``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import attrs

from rgruntime.agents.agent import Agent, AgentRegistry
from rgruntime.agents.config import MemorySearch
from rgruntime.agents.events import EventBus
from rgruntime.agents.trimming import AgentEntries
from rgruntime.errors import InvalidArgumentError
from rgruntime.extras import require_extra
from rgruntime.keys import stable_key
from rgruntime.runtime.dependencies import record_read_of
from rgruntime.runtime.runtime import Runtime

if TYPE_CHECKING:
    from rgruntime.semantic.embedder import Embedder
    from rgruntime.semantic.index import HnswSettings, PartitionIndex

__all__ = ["MemoryAPI", "MemoryRecord", "MemoryResult", "PreloadResult", "memory_tag"]

logger = logging.getLogger("rgruntime.memory")

#: The most results one search may ask for: a lookup is for a prompt, not an export.
MAX_K: Final = 1000

#: Lookups preloaded by ``preload: True`` without ``preload_queries`` when the agent's
#: ``max_entries`` sets no bound.
DEFAULT_PRELOAD_LIMIT: Final = 100

#: Distinct lookups whose use is counted per agent (the least used go first past it).
MAX_TRACKED_LOOKUPS: Final = 10_000

#: Where a cached search's results came from (see ``MemoryAPI._cached_lookup``).
Source = Literal["hit", "loaded", "joined"]


def memory_tag(agent_id: str) -> str:
    """The tag of every cached memory lookup of ``agent_id`` (a child of ``agent:<id>``)."""
    return f"agent:{agent_id}:memory"


def memory_key(agent_id: str, query: str, k: int) -> str:
    """The ``memory`` layer key of a search: ``memory:<agent_id>:k1:<32 hex digits>``."""
    return stable_key(f"memory:{agent_id}", {"query": query, "k": k})


def _frozen_metadata(metadata: Mapping[str, Any] | None, field: str) -> Mapping[str, Any]:
    if metadata is None:
        return MappingProxyType({})
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise InvalidArgumentError(field, metadata, "a dict with string keys, or None")
    # A copy behind a read-only view: cached results are shared by every caller.
    return MappingProxyType(dict(metadata))


def _check_similarity(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgumentError(field, value, "a cosine similarity between 0 and 1")
    return float(value)


@attrs.frozen(kw_only=True)
class MemoryResult:
    """One memory found by a search; ``similarity`` is a cosine similarity in [0, 1]."""

    id: str
    text: str
    metadata: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}))
    similarity: float

    @classmethod
    def coerce(cls, item: object, field: str) -> MemoryResult:
        """A user search function's result item (a MemoryResult or a dict) as a MemoryResult."""
        if isinstance(item, MemoryResult):
            return item
        if not isinstance(item, Mapping):
            raise InvalidArgumentError(
                field, item, "a MemoryResult or a dict with text, id, metadata, similarity"
            )
        text = item.get("text")
        if not isinstance(text, str):
            raise InvalidArgumentError(f"{field}.text", text, "a string")
        memory_id = item.get("id", stable_key("memory", text))
        if not isinstance(memory_id, str | int):
            raise InvalidArgumentError(f"{field}.id", memory_id, "a string")
        return cls(
            id=str(memory_id),
            text=text,
            metadata=_frozen_metadata(item.get("metadata"), f"{field}.metadata"),
            similarity=_check_similarity(item.get("similarity", 1.0), f"{field}.similarity"),
        )


@attrs.frozen(kw_only=True)
class MemoryRecord:
    """A memory as stored: what ``add`` was given, and when."""

    id: str
    agent_id: str
    text: str
    metadata: Mapping[str, Any]
    created_at: float


@attrs.frozen(kw_only=True)
class PreloadResult:
    """What a preload did, query by query.

    ``loaded``: queries looked up now (their results are in the cache); ``already_cached``:
    queries whose lookup was cached already (nothing ran); ``failed``: queries whose lookup
    raised, with the exception (nothing was cached for them).
    """

    agent_id: str
    loaded: Mapping[str, tuple[MemoryResult, ...]]
    already_cached: tuple[str, ...]
    failed: Mapping[str, Exception]

    @property
    def ok(self) -> bool:
        return not self.failed


class _AgentMemory:
    """One agent's memories: records by label, labels by id, and their vectors' index."""

    __slots__ = ("deleting", "ids", "index", "next_label", "records", "writing")

    def __init__(self, index: PartitionIndex) -> None:
        self.index = index
        # An index has one writer at a time (searches may run beside it): two adds in worker
        # threads at once could both build the partition's first graph and lose labels.
        self.writing = anyio.Lock()
        self.records: dict[int, MemoryRecord] = {}
        self.ids: dict[str, int] = {}
        self.next_label = 0
        # Deletions not yet applied to the index: a search asks for that many more neighbours,
        # since the ones it finds may be going.
        self.deleting = 0


class MemoryAPI:
    """``client.memory`` (see the module documentation)."""

    def __init__(
        self,
        runtime: Runtime,
        agents: AgentRegistry,
        events: EventBus,
        *,
        embedder: Embedder | str | None = None,
        search: MemorySearch | None = None,
        changes: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        missed: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._runtime = runtime
        # Answers removed inside it are computed afresh when asked again (Executor).
        self._changes = changes
        # Told (layer, agent id, query) of every lookup not served from the cache (diagnosis).
        self._missed = missed
        self._layer = runtime.layer("memory")
        self._agents = agents
        self._events = events
        self._embedder_spec: Embedder | str = embedder if embedder is not None else "minilm"
        self._embedder: Embedder | None = None
        self._embedder_lock = anyio.Lock()
        self._default_search = search
        self._stores: dict[str, _AgentMemory] = {}
        #: The index settings of agents' partitions created from now on (None: the defaults,
        #: exact search up to 2,048 memories, an hnswlib graph above).
        self.index_settings: HnswSettings | None = None
        # Each agent's cached lookups, oldest first, for memory_config.cache.max_entries.
        self._entries = AgentEntries(self._layer)
        # How often (and how lately) each agent asked each lookup: what "preload": True loads.
        self._usage: dict[str, _LookupUsage] = {}

    # -- the user's API ----------------------------------------------------------------------------

    async def add(self, agent_id: str, text: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Store ``text`` (with ``metadata``) as a memory of ``agent_id``; return its id.

        Returns once the memory is searchable (and, with ``on_memory_update``, the agent's cached
        lookups are invalidated).
        """
        agent = self._agents.get(agent_id)
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError("text", text, "a non-empty string")
        frozen = _frozen_metadata(metadata, "metadata")
        self._require_builtin(agent, "add")
        embedder = await self._get_embedder()
        vector = (await embedder.embed([text]))[0]
        store = self._store(agent.id, embedder.dimension)
        label = store.next_label
        store.next_label += 1
        record = MemoryRecord(
            id=f"mem_{secrets.token_hex(8)}",
            agent_id=agent.id,
            text=text,
            metadata=frozen,
            created_at=time.time(),
        )
        # Cancelled before this point, nothing is stored. From here on the add completes even
        # if its caller is cancelled: a vector without its record, or a memory stored while the
        # agent's cached lookups that miss it stay, would be a half-done add.
        with anyio.CancelScope(shield=True):
            async with store.writing:
                await _run_in_worker(store.index.apply, [], [label], vector[None, :])
            if self._stores.get(agent.id) is store:  # else the agent was deleted meanwhile
                store.records[label] = record
                store.ids[record.id] = label
            removed = await self._invalidate_after_change(agent)
        await self._changed_events(agent, "memory.added", record.id, removed)
        return record.id

    async def delete(self, agent_id: str, memory_id: str) -> bool:
        """Forget a memory; True if ``agent_id`` had it."""
        agent = self._agents.get(agent_id)
        if not isinstance(memory_id, str):
            raise InvalidArgumentError("memory_id", memory_id, "a memory id returned by add()")
        self._require_builtin(agent, "delete")
        store = self._stores.get(agent.id)
        label = store.ids.pop(memory_id, None) if store is not None else None
        if store is None or label is None:
            return False
        # Out of the records first: from now on no search returns it, even before the index
        # has dropped its vector.
        del store.records[label]
        store.deleting += 1
        # As in add: once the memory is out of the records, the rest of the change completes.
        with anyio.CancelScope(shield=True):
            try:
                async with store.writing:
                    await _run_in_worker(store.index.apply, [label], [], None)
            finally:
                store.deleting -= 1
            removed = await self._invalidate_after_change(agent)
        await self._changed_events(agent, "memory.deleted", memory_id, removed)
        return True

    def get(self, agent_id: str, memory_id: str) -> MemoryRecord | None:
        """The stored memory ``memory_id`` of ``agent_id``, or None."""
        if not isinstance(memory_id, str):
            raise InvalidArgumentError("memory_id", memory_id, "a memory id returned by add()")
        store = self._stores.get(self._agents.get(agent_id).id)
        label = store.ids.get(memory_id) if store is not None else None
        return store.records.get(label) if store is not None and label is not None else None

    def list(self, agent_id: str) -> builtins.list[MemoryRecord]:
        """Every stored memory of ``agent_id``, oldest first (built-in store only)."""
        store = self._stores.get(self._agents.get(agent_id).id)
        return [] if store is None else sorted(store.records.values(), key=_created)

    async def search(self, agent_id: str, query: str, k: int = 5) -> builtins.list[MemoryResult]:
        """The ``k`` memories of ``agent_id`` most similar to ``query``, most similar first.

        Cached in the ``memory`` layer when the agent's configuration allows it.
        """
        agent = self._agents.get(agent_id)
        _check_query(query, "query")
        _check_k(k)
        if not self.caches(agent):
            return list(await self._lookup(agent, query, k))
        self._usage.setdefault(agent.id, _LookupUsage()).record(query, k)
        results, source, key = await self._cached_lookup(agent, query, k)
        # In the caller's task: the execution running this search (if any) depends on the key,
        # or, if the cache no longer holds these results (the lookup was discarded by a change
        # while it ran, or removed since), must not be cached.
        record_read_of(self._layer, key, results)
        # A search that joined an identical one in progress is a miss (nothing stored answered
        # it, as the layer counts it), one that ran no lookup of its own: joined=True.
        event = "cache.hit" if source == "hit" else "cache.miss"
        if source != "hit" and self._missed is not None:
            self._missed("memory", agent.id, query)
        if self._events.has_handlers(event):
            extra = {} if source == "hit" else {"joined": source == "joined"}
            self._events.emit_nowait(
                event, layer="memory", agent_id=agent.id, key=key, query=query, **extra
            )
        return list(results)

    async def preload(
        self,
        agent_id: str,
        queries: Iterable[str] | None = None,
        *,
        k: int = 5,
        concurrency: int = 8,
    ) -> PreloadResult:
        """Look up ``queries`` (at most ``concurrency`` at once) and cache the results.

        Without ``queries``: the agent's most used lookups, as ``preload: True`` does (see
        :meth:`preload_plan`). A failing lookup does not stop the others: it is reported in
        ``failed`` with its exception. Raises :class:`~rgruntime.InvalidArgumentError` for bad
        arguments, or when the agent's memory lookups are not cached (preloading would fill
        nothing).
        """
        agent = self._agents.get(agent_id)
        if queries is None:
            if not self.caches(agent):
                raise InvalidArgumentError("agent_id", agent.id, _CACHED_AGENT)
            result = await self._preload_plan(agent, self.preload_plan(agent), concurrency)
            await self._events.emit("memory.preloaded", agent_id=agent.id, result=result)
            return result
        if isinstance(queries, str) or not isinstance(queries, Iterable):
            raise InvalidArgumentError("queries", queries, "a list of queries, not one string")
        given = builtins.list(queries)
        for query in given:
            _check_query(query, "queries")
        unique = builtins.list(dict.fromkeys(given))  # each query once, in the given order
        _check_k(k)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidArgumentError("concurrency", concurrency, "a positive whole number")
        if not self.caches(agent):
            raise InvalidArgumentError("agent_id", agent.id, _CACHED_AGENT)
        result = await self._preload(agent, unique, k, concurrency)
        await self._events.emit("memory.preloaded", agent_id=agent.id, result=result)
        return result

    async def invalidate(self, agent_id: str) -> int:
        """Remove every cached memory lookup of ``agent_id`` (after its memories changed in a
        store of your own); return how many went."""
        agent = self._agents.get(agent_id)
        return await self._invalidate_lookups(agent.id)

    def caches(self, agent: Agent) -> bool:
        """Whether ``agent``'s memory lookups are cached."""
        config = agent.cache_config
        return config.enabled and config.memory_cache and agent.memory_config.cache.enabled

    # -- the client's hooks ------------------------------------------------------------------------

    def preload_plan(self, agent: Agent) -> builtins.list[tuple[str, int]]:
        """What ``preload: True`` looks up, as ``(query, k)`` pairs.

        ``preload_queries`` if given (with ``preload_k``). Else the agent's most used lookups
        (by the searches recorded since the client opened; the most frequent first, the latest
        first among equals), else, with no history, its newest memories (their text as the
        query, ``preload_k`` results): at most ``max_entries`` lookups (100 without a bound).
        """
        cache = agent.memory_config.cache
        if cache.preload_queries:
            return [(query, cache.preload_k) for query in cache.preload_queries]
        limit = cache.max_entries if cache.max_entries is not None else DEFAULT_PRELOAD_LIMIT
        usage = self._usage.get(agent.id)
        if usage is not None and usage.counts:
            return usage.most_used(limit)
        store = self._stores.get(agent.id)
        if store is None:
            return []
        # Labels grow with each add: they order memories added within one clock tick.
        newest = sorted(store.records.items(), key=lambda item: (item[1].created_at, item[0]))
        return [(record.text, cache.preload_k) for _, record in reversed(newest[-limit:])]

    async def preload_configured(self, agent: Agent) -> PreloadResult | None:
        """Preload what the agent's ``memory_config.cache.preload`` asks for (:meth:`preload_plan`).

        Used when an agent is created (or updated) in an open client and when the client opens;
        a failure is logged, never raised: it must not undo the agent's creation.
        """
        cache = agent.memory_config.cache
        if not (cache.preload and self.caches(agent)):
            return None
        plan = self.preload_plan(agent)
        if not plan:
            return None
        result = await self._preload_plan(agent, plan, cache.preload_concurrency)
        for query, error in result.failed.items():
            logger.warning(
                "preloading memory of agent %r: query %r failed: %r", agent.id, query, error
            )
        await self._events.emit("memory.preloaded", agent_id=agent.id, result=result)
        return result

    async def agent_updated(self, old: Agent, new: Agent) -> None:
        """A new memory configuration (another search function, TTL...) makes old lookups
        wrong: remove them, then preload what the new configuration asks for."""
        if (
            old.memory_config.search is not new.memory_config.search
            or old.memory_config.cache != new.memory_config.cache
            or self.caches(old) != self.caches(new)
        ):
            await self._invalidate_lookups(new.id)
            await self.preload_configured(new)

    def forget_agent(self, agent_id: str) -> None:
        """Drop a deleted agent's memories (its cached lookups go with its other entries)."""
        self._stores.pop(agent_id, None)
        self._usage.pop(agent_id, None)
        self._entries.forget(agent_id)

    # -- internals ---------------------------------------------------------------------------------

    def _search_function(self, agent: Agent) -> MemorySearch | None:
        own = agent.memory_config.search
        return own if own is not None else self._default_search

    def _require_builtin(self, agent: Agent, operation: str) -> None:
        if self._search_function(agent) is not None:
            raise InvalidArgumentError(
                "agent_id",
                agent.id,
                f"an agent whose memories are in the built-in store (this one searches through "
                f"a memory_search function: {operation} in your own store, then call "
                f"client.memory.invalidate({agent.id!r}))",
            )

    async def _get_embedder(self) -> Embedder:
        if self._embedder is not None:
            return self._embedder
        async with self._embedder_lock:  # two first uses must not load the model twice
            if self._embedder is None:
                require_extra("semantic", "the built-in memory store (client.memory)")
                from rgruntime.semantic import CachedEmbedder, embedding_limiter, make_embedder

                spec = self._embedder_spec
                # Loading a local model reads and parses its file: off the event loop.
                model = (
                    await anyio.to_thread.run_sync(make_embedder, spec, limiter=embedding_limiter())
                    if isinstance(spec, str)
                    else spec
                )
                # Agents repeat queries (and preloads repeat them again): embed each once.
                self._embedder = CachedEmbedder(model, max_entries=2048)
            return self._embedder

    def _store(self, agent_id: str, dimension: int) -> _AgentMemory:
        store = self._stores.get(agent_id)
        if store is None:
            from rgruntime.semantic import HnswSettings, PartitionIndex

            settings = self.index_settings or HnswSettings()
            store = self._stores[agent_id] = _AgentMemory(PartitionIndex(dimension, settings))
        return store

    async def _lookup(self, agent: Agent, query: str, k: int) -> tuple[MemoryResult, ...]:
        """Search the agent's memories, bypassing the cache."""
        search = self._search_function(agent)
        if search is not None:
            found = await search(agent.id, query, k)
            if isinstance(found, str | bytes) or not isinstance(found, Sequence):
                raise InvalidArgumentError(
                    "memory_search result", found, "a list of MemoryResult or dicts"
                )
            return tuple(
                MemoryResult.coerce(item, f"memory_search result[{position}]")
                for position, item in enumerate(found[:k])
            )
        store = self._stores.get(agent.id)
        if store is None or not store.records:
            return ()
        embedder = await self._get_embedder()
        vector = (await embedder.embed([query]))[0]
        pairs = await _run_in_worker(store.index.search, vector, k + store.deleting)
        results: builtins.list[MemoryResult] = []
        for label, similarity in pairs:
            record = store.records.get(label)
            if record is not None:  # deleted while the search ran
                results.append(
                    MemoryResult(
                        id=record.id,
                        text=record.text,
                        metadata=record.metadata,
                        similarity=similarity,
                    )
                )
        return tuple(results[:k])

    async def _cached_lookup(
        self, agent: Agent, query: str, k: int
    ) -> tuple[tuple[MemoryResult, ...], Source, str]:
        """The search through the ``memory`` layer: (results, where they came from, key).

        ``hit``: a stored entry; ``loaded``: this call ran the lookup; ``joined``: an identical
        lookup already running answered it.
        """
        key = memory_key(agent.id, query, k)
        # Read with no suspension before get_or_load: a live entry now is what it returns.
        stored = key in self._layer
        loaded = False

        async def load() -> tuple[MemoryResult, ...]:
            nonlocal loaded
            loaded = True
            return await self._lookup(agent, query, k)

        cache = agent.memory_config.cache
        results = await self._layer.get_or_load(
            key, load, ttl=cache.ttl, tags=[memory_tag(agent.id)]
        )
        source: Source = "loaded" if loaded else "hit" if stored else "joined"
        if source != "hit" and key in self._layer:
            # Counted once cached (by this lookup or the one joined), by every caller that
            # waited: the loader's own caller may have left, and a discarded load cached nothing.
            self._entries.remember(agent.id, key, cache.max_entries)
        return results, source, key

    async def _preload_plan(
        self, agent: Agent, plan: builtins.list[tuple[str, int]], concurrency: int
    ) -> PreloadResult:
        """Preload ``(query, k)`` pairs: one :meth:`_preload` per ``k``, results merged."""
        by_k: dict[int, builtins.list[str]] = {}
        for query, k in plan:
            by_k.setdefault(k, []).append(query)
        parts = [await self._preload(agent, queries, k, concurrency) for k, queries in by_k.items()]
        if len(parts) == 1:
            return parts[0]
        return PreloadResult(
            agent_id=agent.id,
            loaded=MappingProxyType({q: r for part in parts for q, r in part.loaded.items()}),
            already_cached=tuple(q for part in parts for q in part.already_cached),
            failed=MappingProxyType({q: e for part in parts for q, e in part.failed.items()}),
        )

    async def _preload(
        self, agent: Agent, queries: builtins.list[str], k: int, concurrency: int
    ) -> PreloadResult:
        loaded: dict[str, tuple[MemoryResult, ...]] = {}
        already: list[str] = []
        failed: dict[str, Exception] = {}
        pending = iter(queries)

        async def worker() -> None:
            # ``concurrency`` workers share one iterator: never more lookups at once than that.
            for query in pending:
                if memory_key(agent.id, query, k) in self._layer:
                    already.append(query)
                    continue
                try:
                    results, _, _ = await self._cached_lookup(agent, query, k)
                except Exception as error:  # reported, never cached: the others go on
                    failed[query] = error
                else:
                    loaded[query] = results

        async with anyio.create_task_group() as group:
            for _ in range(min(concurrency, len(queries))):
                group.start_soon(worker)
        order = {query: position for position, query in enumerate(queries)}
        return PreloadResult(
            agent_id=agent.id,
            loaded=MappingProxyType(dict(sorted(loaded.items(), key=lambda i: order[i[0]]))),
            already_cached=tuple(sorted(already, key=order.__getitem__)),
            failed=MappingProxyType(dict(sorted(failed.items(), key=lambda i: order[i[0]]))),
        )

    async def _invalidate_after_change(self, agent: Agent) -> int | None:
        """With ``on_memory_update``, the agent's cached lookups (and what used them) go."""
        if not _invalidates_on_memory_update(agent):
            return None
        return await self._remove_lookups(agent.id)

    async def _changed_events(
        self, agent: Agent, event: str, memory_id: str, removed: int | None
    ) -> None:
        if removed is not None:
            await self._events.emit("memory.invalidated", agent_id=agent.id, removed=removed)
        await self._events.emit(event, agent_id=agent.id, memory_id=memory_id)

    async def _remove_lookups(self, agent_id: str) -> int:
        # Through the runtime (the supervisor), as every invalidation whose dependents must go:
        # it returns once the answers that used these lookups are gone too.
        with self._changes():
            return await self._runtime.invalidate(tags=[memory_tag(agent_id)])

    async def _invalidate_lookups(self, agent_id: str) -> int:
        removed = await self._remove_lookups(agent_id)
        await self._events.emit("memory.invalidated", agent_id=agent_id, removed=removed)
        return removed


_CACHED_AGENT: Final = (
    "an agent whose memory lookups are cached (memory_config.cache.enabled and "
    "cache_config.memory_cache)"
)


class _LookupUsage:
    """How many times, and how lately, an agent asked each ``(query, k)`` lookup."""

    __slots__ = ("counts", "last", "sequence")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.last: dict[tuple[str, int], int] = {}
        self.sequence = 0

    def record(self, query: str, k: int) -> None:
        lookup = (query, k)
        self.sequence += 1
        self.counts[lookup] = self.counts.get(lookup, 0) + 1
        self.last[lookup] = self.sequence
        if len(self.counts) > MAX_TRACKED_LOOKUPS:
            # Bounded: the least used (the oldest among equals) is forgotten.
            least = min(self.counts, key=lambda item: (self.counts[item], self.last[item]))
            del self.counts[least], self.last[least]

    def most_used(self, limit: int) -> builtins.list[tuple[str, int]]:
        ranked = sorted(self.counts, key=lambda item: (-self.counts[item], -self.last[item]))
        return ranked[:limit]


def _invalidates_on_memory_update(agent: Agent) -> bool:
    """The agent's ``cache_config.auto_invalidate.on_memory_update`` (on by default)."""
    return agent.cache_config.auto_invalidate.on_memory_update


def _created(record: MemoryRecord) -> float:
    return record.created_at


def _check_query(query: object, field: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError(field, query, "a non-empty string")


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError("k", k, f"a whole number from 1 to {MAX_K}")


async def _run_in_worker(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a worker thread, behind the semantic package's index limiter."""
    from rgruntime.semantic import worker_limiter

    return await anyio.to_thread.run_sync(function, *args, limiter=worker_limiter())
