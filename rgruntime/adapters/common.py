"""What every framework adapter does with the runtime, whatever the framework.

A framework hands its adapter a request (prompt, model, settings); the adapter turns it into a
:class:`CachedRequest`:

- ``key``: the exact key, a stable hash of everything that shapes the answer;
- ``partition`` and ``text``: for semantic matching, the text a paraphrase may change (the last
  user message) and, hashed apart, everything that must match exactly (model, settings, tools,
  system prompt, the conversation before it). A paraphrase is only ever matched inside its
  partition.

:class:`AdapterCache` then serves it from a runtime layer (``model`` by default). Two shapes of
hook exist among the frameworks:

- **wrap hooks** (OpenAI Agents' model, pydantic-ai's ``wrap_model_request``) hand over the call:
  :meth:`AdapterCache.fetch` runs it through the layer's ``get_or_load``, so concurrent identical
  requests share one call, and an error reaches every waiter without being cached;
- **lookup / update hooks** (LangChain, LiteLLM) never show the call: :meth:`AdapterCache.begin`
  looks up, and on a miss takes a *lease* on the key; an identical request arriving before the
  lease-holder's :meth:`AdapterCache.finish` waits for it (at most ``join_timeout`` seconds,
  since a failed call never reports back) and is then served the stored answer.

Entries are tagged with the adapter's namespace (``langchain``...), ``model:<name>``, the
adapter's own tags and those of :func:`cache_controls`, so ``runtime.invalidate(tags=[...])``
reaches them like any other entry. A hit keeps the token count of the call that produced it: the
framework is told zero usage and :class:`AdapterStats` records what was saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import anyio
import attrs
import sniffio

from rgruntime._missing import MISSING
from rgruntime.errors import ConfigError, InvalidArgumentError
from rgruntime.keys import digest, stable_key
from rgruntime.runtime.dependencies import record_read_of

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.runtime.layer import Layer
    from rgruntime.runtime.runtime import Runtime
    from rgruntime.semantic.layer_index import LayerSemanticIndex

__all__ = [
    "AdapterCache",
    "AdapterStats",
    "CacheControls",
    "CachedRequest",
    "LoopBridge",
    "Outcome",
    "Stored",
    "cache_controls",
    "jsonable",
    "message_text",
    "on_event_loop",
    "split_last_user",
]

#: How long a request waits for an identical one in flight (lookup / update hooks) before it
#: calls the model itself: the lease-holder's failure is invisible to the cache.
DEFAULT_JOIN_TIMEOUT: Final = 60.0

Match = Literal["exact", "semantic", "joined"]
T = TypeVar("T")


# --- per-call controls ---------------------------------------------------------------------------


@attrs.frozen
class CacheControls:
    """Cache settings for the calls made inside :func:`cache_controls`."""

    read: bool = True
    write: bool = True
    ttl: float | str | None = None
    tags: tuple[str, ...] = ()


_NO_CONTROLS: Final = CacheControls()
_CONTROLS: Final = contextvars.ContextVar("rgruntime_adapter_controls", default=_NO_CONTROLS)


@contextlib.contextmanager
def cache_controls(
    *,
    read: bool = True,
    write: bool = True,
    ttl: float | str | None = None,
    tags: Iterable[str] = (),
) -> Iterator[CacheControls]:
    """Per-call cache controls for frameworks that have none of their own.

    ``read=False``: do not answer from the cache (the fresh answer still replaces the entry);
    ``write=False``: do not store; ``ttl``: these entries' TTL; ``tags``: added to these
    entries' tags. A context variable: tasks started inside the block inherit it, nested blocks
    add their tags to the outer ones'.
    """
    for name, flag in (("read", read), ("write", write)):
        if not isinstance(flag, bool):
            raise InvalidArgumentError(name, flag, "True or False")
    if isinstance(tags, str):
        raise InvalidArgumentError("tags", tags, "a list of tag strings, not one string")
    outer = _CONTROLS.get()
    controls = CacheControls(
        read, write, ttl if ttl is not None else outer.ttl, (*outer.tags, *tags)
    )
    token = _CONTROLS.set(controls)
    try:
        yield controls
    finally:
        _CONTROLS.reset(token)


def current_controls() -> CacheControls:
    return _CONTROLS.get()


# --- records -------------------------------------------------------------------------------------


@attrs.frozen
class CachedRequest:
    """A framework request as the cache sees it (build it with :meth:`AdapterCache.request`)."""

    key: str
    partition: str
    text: str | None
    model: str
    tags: tuple[str, ...]
    controls: CacheControls


@attrs.frozen
class Stored:
    """What an adapter's layer entry holds: the framework's answer in its own form, and the tokens
    producing it took (a hit saves them)."""

    value: Any
    tokens: int


@attrs.frozen
class Outcome:
    """An answer and where it came from. ``match``: ``exact``, ``semantic``, ``joined`` (shared
    with an identical request in flight), or None for a fresh call."""

    value: Any
    cached: bool
    match: Match | None = None
    similarity: float | None = None
    tokens_saved: int = 0


@attrs.define
class AdapterStats:
    """What one adapter did: requests, how they were answered, and the tokens hits saved."""

    requests: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    joined: int = 0
    model_calls: int = 0
    uncacheable: int = 0
    #: Answers written to the layer (and, semantic on, indexed by meaning).
    stored: int = 0
    tokens_saved: int = 0

    @property
    def hits(self) -> int:
        return self.exact_hits + self.semantic_hits + self.joined

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    def copy(self) -> AdapterStats:
        return attrs.evolve(self)


class _Uncacheable(Exception):
    """Carries an answer out of a load that must reach the waiters but not the cache."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Lease:
    """An identical request in flight, for lookup / update hooks."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = anyio.Event()


def jsonable(value: Any) -> Any:
    """``value`` as JSON data for a key: pydantic models dumped, dataclasses and attrs as dicts,
    sets sorted, anything else by its ``repr`` (stable for the objects frameworks put in a
    request: enums, paths, numbers)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(repr(jsonable(item)) for item in value)
    return _jsonable_object(value)


def _jsonable_object(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"))
    if attrs.has(type(value)):
        return jsonable(attrs.asdict(value))
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: jsonable(getattr(value, name)) for name in fields}
    return repr(value)


def message_text(content: Any) -> str | None:
    """A chat message's text: its content string, or its text parts joined (None when a part is
    not text: an image or a file is not matched by meaning)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = [part.get("text") if isinstance(part, Mapping) else None for part in content]
        if all(isinstance(text, str) for text in texts):
            return "\n".join(texts)  # type: ignore[arg-type]
    return None


def split_last_user(
    messages: Any, *, content_keys: tuple[str, ...] = ("content",)
) -> tuple[str | None, Any]:
    """The text of the last ``role: user`` message (chat dicts), and the messages with that text
    left out: what a paraphrase changes, and the context it must share."""
    if not isinstance(messages, list):
        return None, messages
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, Mapping) and message.get("role") == "user":
            body = next((key for key in content_keys if key in message), content_keys[0])
            text = message_text(message.get(body))
            if text is None:
                return None, messages
            return text, [*messages[:index], {**message, body: None}, *messages[index + 1 :]]
    return None, messages


def _semantic_options(semantic: bool | Mapping[str, Any]) -> dict[str, Any] | None:
    if semantic is False:
        return None
    if semantic is True:
        return {}
    if not isinstance(semantic, Mapping):
        raise ConfigError("semantic", semantic, "False, True, or a dict of semantic index options")
    return dict(semantic)


# --- the cache -----------------------------------------------------------------------------------


class AdapterCache:
    """One framework adapter's view of a runtime (see the module documentation).

    ``cache``: a :class:`~rgruntime.Runtime` or a :class:`~rgruntime.ResonantGenesis` client
    (its runtime is used once it is open). ``namespace``: the framework's name, first part of
    every key and a tag of every entry. ``layer``: where answers live. ``ttl``, ``tags``: for
    every entry. ``semantic``: ``True``, or a dict of options: ``embedder`` (default
    ``"minilm"``) and ``threshold`` are used here, and the whole dict goes to
    ``runtime.semantic_index`` (so options it gains later, such as an error bound, pass through).
    """

    def __init__(
        self,
        cache: Runtime | ResonantGenesis,
        *,
        namespace: str,
        layer: str = "model",
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        semantic: bool | Mapping[str, Any] = False,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
    ) -> None:
        if not hasattr(cache, "layer") and not hasattr(cache, "runtime"):
            raise ConfigError("cache", cache, "an rgruntime Runtime or ResonantGenesis client")
        if not isinstance(namespace, str) or not namespace or ":" in namespace:
            raise ConfigError("namespace", namespace, "a non-empty name without ':'")
        if isinstance(tags, str):
            raise ConfigError("tags", tags, "a list of tag strings, not one string")
        if isinstance(join_timeout, bool) or not isinstance(join_timeout, int | float):
            raise ConfigError("join_timeout", join_timeout, "a number of seconds, 0 or more")
        if join_timeout < 0:
            raise ConfigError("join_timeout", join_timeout, "a number of seconds, 0 or more")
        self._source = cache
        self.namespace = namespace
        self.layer_name = layer
        self.ttl = ttl
        self.tags = tuple(tags)
        options = _semantic_options(semantic)
        self._semantic_options = options
        self._threshold: float | None = None
        if options is not None:
            self._embedder = options.pop("embedder", "minilm")
            self._threshold = options.get("threshold")
        self.join_timeout = float(join_timeout)
        self._stats = AdapterStats()
        self._leases: dict[str, _Lease] = {}

    def __repr__(self) -> str:
        return f"<AdapterCache {self.namespace!r} layer={self.layer_name!r}>"

    # -- what the runtime offers ---------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        source: Any = self._source
        return source if hasattr(source, "layer") else source.runtime  # type: ignore[no-any-return]

    @property
    def layer(self) -> Layer:
        return self.runtime.layer(self.layer_name)

    @property
    def semantic(self) -> bool:
        return self._semantic_options is not None

    async def semantic_index(self) -> LayerSemanticIndex:
        assert self._semantic_options is not None
        from rgruntime.semantic import semantic_index

        return await semantic_index(
            self.runtime, self.layer_name, embedder=self._embedder, **self._semantic_options
        )

    def stats(self) -> AdapterStats:
        """A snapshot of this adapter's counters."""
        return self._stats.copy()

    def check_backend(self) -> None:
        """The frameworks run on asyncio only: say so instead of failing somewhere inside them."""
        backend = sniffio.current_async_library()
        if backend != "asyncio":
            raise ConfigError(
                "async backend",
                backend,
                f"asyncio: the {self.namespace} adapter runs where {self.namespace} runs",
            )

    async def invalidate(self, *, tags: Iterable[str] | None = None) -> int:
        """Remove this adapter's entries (all of them, or those with any of ``tags``)."""
        selected = [self.namespace] if tags is None else list(tags)
        return await self.runtime.invalidate(tags=selected)

    # -- requests -----------------------------------------------------------------------------

    def request(
        self, *, model: str, exact: Any, context: Any, text: str | None, tag: str | None = None
    ) -> CachedRequest:
        """A request keyed by ``exact`` (JSON data: everything that shapes the answer, ``text``
        included), matched by meaning on ``text`` among the entries sharing ``context``.
        ``tag``: what the entry is about (default ``model:<model>``)."""
        controls = current_controls()
        subject = tag if tag is not None else f"model:{model}"
        tags = (self.namespace, subject, *self.tags, *controls.tags)
        return CachedRequest(
            key=stable_key(f"{self.namespace}:{model}", exact),
            partition=f"{self.namespace}:{digest(model, context)}",
            text=text if text and text.strip() else None,
            model=model,
            tags=tags,
            controls=controls,
        )

    def _ttl(self, request: CachedRequest) -> float | str | None:
        return request.controls.ttl if request.controls.ttl is not None else self.ttl

    def _hit(
        self, stored: Stored, match: Match, similarity: float | None = None, *, key: str
    ) -> Outcome:
        # Inside a recorded computation (an rgruntime agent's run, a cached tool), its result now
        # depends on this entry: invalidating the entry invalidates the result.
        record_read_of(self.layer, key, stored)
        if match == "exact":
            self._stats.exact_hits += 1
        elif match == "semantic":
            self._stats.semantic_hits += 1
        else:
            self._stats.joined += 1
        self._stats.tokens_saved += stored.tokens
        return Outcome(stored.value, True, match, similarity, stored.tokens)

    async def lookup(self, request: CachedRequest) -> Outcome | None:
        """The stored answer to ``request``: its exact key, else (semantic on) a paraphrase."""
        layer = self.layer
        if request.key in layer:  # not counted as a miss: a semantic hit may follow
            stored = layer.get_nowait(request.key, MISSING)
            if isinstance(stored, Stored):
                return self._hit(stored, "exact", key=request.key)
        if self.semantic and request.text is not None:
            index = await self.semantic_index()
            found = await index.lookup(request.partition, request.text, threshold=self._threshold)
            if found is not None and isinstance(found.value, Stored):
                return self._hit(found.value, "semantic", found.similarity, key=found.key)
        return None

    def lookup_nowait(self, request: CachedRequest) -> Outcome | None:
        """:meth:`lookup` by exact key only, without suspending (for synchronous hooks)."""
        self._stats.requests += 1
        if not request.controls.read:
            return None
        stored = self.layer.get_nowait(request.key, MISSING)
        return self._hit(stored, "exact", key=request.key) if isinstance(stored, Stored) else None

    async def store(self, request: CachedRequest, value: Any, tokens: int) -> None:
        """Cache ``value`` (unless the controls say not to) and index its text by meaning."""
        if not request.controls.write:
            return
        stored = Stored(value, tokens)
        await self.layer.set(request.key, stored, ttl=self._ttl(request), tags=request.tags)
        record_read_of(self.layer, request.key, stored)
        if self.semantic and request.text is not None:
            index = await self.semantic_index()
            await index.add(request.partition, request.key, request.text)
        self._stats.stored += 1

    def store_nowait(self, request: CachedRequest, value: Any, tokens: int) -> None:
        """:meth:`store` without suspending and without semantic indexing (synchronous hooks)."""
        self._stats.model_calls += 1
        if request.controls.write:
            stored = Stored(value, tokens)
            self.layer.set_nowait(request.key, stored, ttl=self._ttl(request), tags=request.tags)
            record_read_of(self.layer, request.key, stored)
            self._stats.stored += 1

    # -- wrap hooks: the adapter makes the call ------------------------------------------------

    async def fetch(
        self,
        request: CachedRequest,
        call: Callable[[], Awaitable[Any]],
        *,
        tokens_of: Callable[[Any], int],
        cacheable: Callable[[Any], bool] = lambda value: True,
    ) -> Outcome:
        """The answer to ``request``: from the cache, else from ``await call()``, run once for
        every identical request arriving while it runs."""
        self.check_backend()
        self._stats.requests += 1
        controls = request.controls
        if controls.read:
            hit = await self.lookup(request)
            if hit is not None:
                return hit
        if not controls.read or not controls.write:
            # A refresh or an unstored call: nobody may share it (get_or_load would serve the
            # entry a refresh must replace).
            self._stats.model_calls += 1
            value = await call()
            if cacheable(value):
                await self.store(request, value, tokens_of(value))
            else:
                self._stats.uncacheable += 1
            return Outcome(value, cached=False)
        ran_here = False

        async def load() -> Stored:
            nonlocal ran_here
            ran_here = True
            self._stats.model_calls += 1
            value = await call()
            if not cacheable(value):
                self._stats.uncacheable += 1
                raise _Uncacheable(value)
            return Stored(value, tokens_of(value))

        try:
            stored = await self.layer.get_or_load(
                request.key, load, ttl=self._ttl(request), tags=request.tags
            )
        except _Uncacheable as answer:
            return Outcome(answer.value, cached=False, match=None if ran_here else "joined")
        if not ran_here:
            return self._hit(stored, "joined", key=request.key)
        record_read_of(self.layer, request.key, stored)
        if self.semantic and request.text is not None:
            index = await self.semantic_index()
            await index.add(request.partition, request.key, request.text)
        self._stats.stored += 1
        return Outcome(stored.value, cached=False)

    # -- lookup / update hooks: the framework makes the call ------------------------------------

    async def begin(self, request: CachedRequest, *, join: bool = True) -> Outcome | None:
        """Look ``request`` up; on a miss, wait for an identical request in flight, or become
        the one in flight (call :meth:`finish` with its answer). ``join=False``: no waiting,
        for calls that cannot be shared (streams)."""
        self.check_backend()
        self._stats.requests += 1
        if not request.controls.read:
            return None
        while True:
            hit = await self.lookup(request)
            if hit is not None:
                return hit
            if not request.controls.write or not join:
                return None  # it will not store: nobody can wait for it, nor it for others
            lease = self._leases.get(request.key)
            if lease is None:
                self._leases[request.key] = _Lease()
                return None
            with anyio.move_on_after(self.join_timeout):
                await lease.done.wait()
            if not lease.done.is_set():
                # Its call failed or was abandoned (a failure never reaches the cache): go.
                self._leases[request.key] = _Lease()
                return None
            stored = self.layer.get_nowait(request.key, MISSING)
            if isinstance(stored, Stored):
                return self._hit(stored, "joined", key=request.key)
            # It was not stored (uncacheable): look again, and take the lease if it is free.

    async def finish(
        self, request: CachedRequest, value: Any, tokens: int, *, cacheable: bool = True
    ) -> None:
        """The framework's fresh answer to ``request``: store it and release the waiters."""
        self._stats.model_calls += 1
        try:
            if cacheable:
                await self.store(request, value, tokens)
            else:
                self._stats.uncacheable += 1
        finally:
            lease = self._leases.pop(request.key, None)
            if lease is not None:
                lease.done.set()


def on_event_loop() -> bool:
    """Whether the caller runs inside a task of an event loop: synchronous hooks can reach the
    runtime's layers only from there (another thread has no business touching them)."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


class LoopBridge:
    """For frameworks that call their cache synchronously, from worker threads (DSPy, LiteLLM's
    sync API): run the cache's coroutines on the runtime's asyncio loop and wait for them.

    Made on that loop it remembers it; else pass ``loop``. On the loop's own thread nothing can
    wait for the loop (it is busy running the caller): :meth:`on_loop` tells the hook to use the
    adapter's non-waiting methods instead.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, owner: str) -> None:
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigError(
                    "loop",
                    None,
                    f"the runtime's asyncio event loop: make {owner} inside it, or pass loop=",
                ) from None
        self.loop = loop

    def on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def wait(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the runtime's loop and wait for it (from another thread)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()
