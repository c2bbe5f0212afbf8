"""What a cached value was computed from, so that it leaves the cache when any of that leaves.

While an execution (or a cached tool call) runs, every cached value it reads is recorded:
``record_read(layer, key)`` adds the entry to the *read set* of the computation running in the
current context (a context variable; a no-op outside one). When the computation's own result is
stored, it *depends on* everything in its read set. When any of those entries leaves its layer,
its dependents are invalidated, and theirs in turn, across layers: a response that used a tool
result goes when the tool result goes. This is what makes long response TTLs safe.

**Which removals cascade.** A removal cascades when it is a *known change* of the value:

- ``invalidated``, ``deleted`` (by a user), ``cleared`` and ``replaced`` cascade: what was read
  is not what the layer holds any more, so whatever was computed from it goes too;
- ``evicted`` and ``trimmed`` (capacity pressure: a layer over its bounds, or an agent's
  ``max_entries`` keeping its newest lookups or answers) do not: the value did not change, the
  layer merely stopped keeping it. Cascading there would make a small layer empty the big ones
  (a tool layer capped at 3 results would take every answer but 3 with it);
- ``expired`` does not by default: a TTL running out is not a known change, and cascading would
  cap every answer's TTL at its shortest dependency's (a response that read a 5-minute tool
  result would live 5 minutes, whatever its own TTL). A runtime opened with
  ``cache_config={"cascade_on_expiry": True}`` (``DependencyGraph(cascade_on_expiry=True)``)
  cascades on expiry too, for data that must never be older than what it was computed from.

Either way the edges of the entry that left are dropped at once: a dependent kept after its
dependency was evicted or expired no longer depends on anything that is gone.

**Who does what.**

- Each layer tells the graph, through a removal listener (:mod:`rgruntime.runtime.removals`),
  whenever one of its keys leaves. The listener is synchronous and never suspends: it updates the
  edges in place (a few dictionary operations on the event loop's thread, where nothing else can
  interleave) and *queues* the dependents to invalidate.
- The graph's own task (an actor started in the supervisor's task group, so it lives and stops
  with the layers) drains that queue: it invalidates the queued dependents in their layers, which
  reports their removals back to the listener, which queues their dependents, until nothing is
  left. Cycles end: a key's edges go the moment it leaves, so no key is visited twice per change.
- Listeners are registered lazily, on the layers that take part in an edge or a recorded read:
  a layer nobody depends on pays nothing on its removals.

**No leaks.** An edge leaves when either side leaves: when a dependency leaves, its edges go,
whether it cascades or not; when a dependent leaves for any reason but a replacement, its own
edges go; ``depend`` leaves out dependencies no longer in their layer. (When a dependent's value
is *replaced*, its edges stay: the new value's edges were recorded just before the write, and
keeping the old ones only makes a later invalidation reach it when it need not.)
A recorded dependent whose write never landed (discarded by a concurrent invalidation, refused as
oversize) is checked by the task right after the write and forgotten.

**A read that goes stale while its reader runs.** An open read set is *tainted* if one of the
entries it read leaves (for a reason that cascades) before the reader's result is stored: the
result is then handed to its callers but not cached, since it was computed from a value the
cache no longer vouches for. The same holds for a value read after it left: code that got a
value from a layer records the read with :func:`record_read_of`, which taints the reader when
the layer no longer holds that value (a lookup whose result an invalidation discarded while it
ran, or an entry removed before its caller resumed). An entry that leaves without cascading is
simply dropped from the open read sets.

**Counts.** ``layer.stats().invalidations`` counts every entry removed by ``invalidate``,
``clear`` or ``delete`` (the trims included), whoever asked, so it includes the dependents the
graph removed; :attr:`DependencyGraph.cascaded` counts those alone, and ``runtime.invalidate``
(``client.cache.invalidate``) returns the entries selected plus the dependents their removal
took along. Evictions and expirations are counted by the layers; evictions never cascade,
expirations only with ``cascade_on_expiry``. :attr:`DependencyGraph.released` counts the
dependents that lost an edge without being removed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel

from rgruntime.errors import RuntimeClosedError
from rgruntime.runtime._actor import Mailbox, Request
from rgruntime.runtime.arguments import Selection
from rgruntime.runtime.remote_layer import RemoteLayer
from rgruntime.runtime.removals import RemovalReason

if TYPE_CHECKING:
    from rgruntime.runtime.layer import Layer

__all__ = [
    "CASCADING_REASONS",
    "DependencyGraph",
    "ReadSet",
    "record_read",
    "record_read_of",
    "record_reads",
    "recording",
    "taint_current",
]

logger = logging.getLogger("rgruntime.runtime")

#: An entry of the runtime: ``(layer name, key)``.
Node: TypeAlias = tuple[str, str]

_current_reads: ContextVar[ReadSet | None] = ContextVar("rgruntime_read_set", default=None)

#: Removal reasons that are known changes of a value: what was computed from it goes too
#: (``expired`` joins them with ``cascade_on_expiry``).
CASCADING_REASONS: frozenset[RemovalReason] = frozenset(
    {"invalidated", "deleted", "cleared", "replaced"}
)

#: The supervisor's runtime-wide invalidation, which the graph's tag invalidations go through.
InvalidateAll: TypeAlias = Callable[[Selection], Awaitable[int]]

#: Inbox capacity: only ``settled()`` callers queue requests; wake-ups are de-duplicated.
_INBOX_SIZE = 64


class _Settle(Request[None]):
    """Answered once no cascade is queued or running."""

    __slots__ = ()


#: ``record_read_of`` without a value: any live entry under the key will do.
_ANY: object = object()


def record_read(layer: str, key: str) -> None:
    """Record that the computation running now read the cached entry ``key`` of ``layer``.

    When the computation's result is cached, it depends on that entry: invalidating the entry
    invalidates the result. A no-op outside a recorded computation (an execution or a cached
    tool call), so library code may call it unconditionally.
    """
    reads = _current_reads.get()
    if reads is not None:
        reads.add(layer, key)


def record_read_of(layer: Layer, key: str, value: object = _ANY) -> None:
    """Record that the computation running now used ``value``, read from ``key`` of ``layer``.

    Call it once the value is in hand (after ``get_or_load`` returned, in the caller's task).
    If the layer still holds the value (the same object, when ``value`` is given), the read is
    recorded as :func:`record_read` does. If it does not, the value was computed or read before
    a change the cache has since seen (its load was discarded by an invalidation, or the entry
    left, or was replaced, before the caller resumed): the computation is tainted, so that its
    result is returned but not cached. A disabled layer keeps nothing, which is no change: no
    taint. A no-op outside a recorded computation, and for layers the computation ignores.
    """
    reads = _current_reads.get()
    if reads is None or layer.name in reads.ignored:
        return
    held = layer.peek(key, _ANY)
    if held is not _ANY and (value is _ANY or held is value):
        reads.add(layer.name, key)
    elif layer.config.enabled:
        reads.tainted = True


def record_reads(reads: ReadSet) -> None:
    """Make the computation running now depend on what ``reads`` read (and share its taint).

    For a result that was not stored, shared by callers other than the one whose context the
    computation ran in: each of them depends directly on what it was computed from.
    """
    current = _current_reads.get()
    if current is None or current is reads:
        return
    for layer, key in reads.nodes:
        current.add(layer, key)
    current.tainted |= reads.tainted


def taint_current() -> None:
    """Mark the computation running now as unfit for caching (it used a value that went stale)."""
    reads = _current_reads.get()
    if reads is not None:
        reads.tainted = True


class ReadSet:
    """The cached entries one computation read, while it runs (see :func:`recording`)."""

    __slots__ = ("__weakref__", "_closed", "committed", "graph", "ignored", "nodes", "tainted")

    def __init__(self, graph: DependencyGraph | None, ignored: Iterable[str] = ()) -> None:
        self.graph = graph
        self.nodes: set[Node] = set()
        self.ignored = frozenset(ignored)
        #: Something it read left its layer before its result was stored.
        self.tainted = False
        #: Its result was stored with its dependencies (see DependencyGraph.depend).
        self.committed = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<ReadSet {len(self.nodes)} reads{' tainted' if self.tainted else ''}>"

    def add(self, layer: str, key: str) -> None:
        if layer in self.ignored or self._closed:
            return
        node = (layer, key)
        if node not in self.nodes:
            self.nodes.add(node)
            if self.graph is not None:
                self.graph.reading(node, self)

    def close(self) -> None:
        """The computation ended: its reads stop being watched."""
        self._closed = True
        if self.graph is not None:
            self.graph.done_reading(self)


@contextlib.contextmanager
def recording(graph: DependencyGraph | None, ignored: Iterable[str] = ()) -> Iterator[ReadSet]:
    """Record the reads of the code run in this block (this task and the tasks it starts).

    ``ignored``: layers whose reads are not recorded (an agent that opted out of invalidation on
    tool updates ignores ``tool``). Blocks nest: an inner block records its own reads only. When
    it ends without its result having been stored (``committed``), its reads and its taint count
    for the outer block too: a result that was not cached cannot be depended on, so the outer
    one depends directly on what it was computed from.
    """
    parent = _current_reads.get()
    reads = ReadSet(graph, ignored)
    token = _current_reads.set(reads)
    try:
        yield reads
    finally:
        _current_reads.reset(token)
        reads.close()
        if parent is not None and not reads.committed:
            for layer, key in reads.nodes:
                parent.add(layer, key)
            parent.tainted |= reads.tainted


class DependencyGraph:
    """The runtime's dependency graph (see the module documentation).

    ``runtime.dependencies``; its task runs from the runtime's opening to its close.
    """

    def __init__(self, *, cascade_on_expiry: bool = False) -> None:
        if not isinstance(cascade_on_expiry, bool):
            raise TypeError(f"cascade_on_expiry: expected True or False, got {cascade_on_expiry!r}")
        self._cascade_on_expiry = cascade_on_expiry
        self._dependents: dict[Node, set[Node]] = {}  # dependency -> what depends on it
        self._dependencies: dict[Node, set[Node]] = {}  # dependent -> what it depends on
        self._readers: dict[Node, set[ReadSet]] = {}  # entry -> open read sets that read it
        self._watching: dict[str, Callable[[], None]] = {}  # layer -> unregister its listener
        self._layers: Mapping[str, Layer] = {}
        # Work for the task: dependents to invalidate (by layer), dependents to check once their
        # write has landed, tag invalidations asked for by code that cannot wait.
        self._pending: dict[str, set[str]] = {}
        self._to_verify: set[Node] = set()
        self._pending_tags: list[frozenset[str]] = []
        # Made when the graph's task starts: a graph whose runtime never opens holds no stream.
        self._mailbox: Mailbox[_Settle] | None = None
        self._busy = False
        self._running = False
        self._invalidate_all: InvalidateAll | None = None
        #: Entries removed because something they depended on left (a known change).
        self.cascaded = 0
        #: Dependents kept when something they depended on left without cascading (evicted,
        #: trimmed, expired): their edge to it was dropped.
        self.released = 0

    def __repr__(self) -> str:
        return f"<DependencyGraph {self.edge_count()} edges>"

    # -- what callers use ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def cascade_on_expiry(self) -> bool:
        """Whether an entry that expires takes its dependents along (off by default)."""
        return self._cascade_on_expiry

    def cascades(self, reason: RemovalReason) -> bool:
        """Whether a removal for ``reason`` removes the entry's dependents."""
        return reason in CASCADING_REASONS or (reason == "expired" and self._cascade_on_expiry)

    def depend(self, node: Node, reads: ReadSet) -> bool:
        """Make ``node`` depend on what ``reads`` holds. Call it just before ``node`` is stored.

        Returns False, recording nothing, when the result must not be stored: ``reads`` is
        tainted (or, with ``cascade_on_expiry``, something it read has expired). Never suspends.
        Dependencies that are no longer in their layer (evicted, trimmed or expired since they
        were read), or whose layer the runtime does not have, are left out: an edge to an entry
        that is gone would never be removed.
        """
        if reads.tainted:
            return False
        if not self._running:
            return True
        dependencies: set[Node] = set()
        for dependency in reads.nodes:
            layer = self._layers.get(dependency[0])
            if dependency == node or layer is None:
                continue
            if dependency[1] in layer:
                dependencies.add(dependency)
            elif self._cascade_on_expiry and layer.holds_expired(dependency[1]):
                # Past its deadline, not yet removed by its layer: an expiry that cascades.
                reads.tainted = True
                return False
        reads.committed = True
        if not dependencies or node[0] not in self._layers:
            return True
        self._watch(node[0])
        for dependency in dependencies:
            self._watch(dependency[0])
            self._dependents.setdefault(dependency, set()).add(node)
        self._dependencies.setdefault(node, set()).update(dependencies)
        self._to_verify.add(node)
        self._wake_task()
        dependent = self._layers[node[0]]
        if isinstance(dependent, RemoteLayer):  # shared with every process on its store
            dependent.record_edges(
                node[1], [(self._layers[layer], key) for layer, key in dependencies]
            )
        return True

    def dependencies_of(self, layer: str, key: str) -> frozenset[Node]:
        """What the entry depends on (directly)."""
        return frozenset(self._dependencies.get((layer, key), ()))

    def dependents_of(self, layer: str, key: str) -> frozenset[Node]:
        """What depends on the entry (directly)."""
        return frozenset(self._dependents.get((layer, key), ()))

    def edge_count(self) -> int:
        return sum(len(nodes) for nodes in self._dependencies.values())

    def open_reads(self) -> int:
        """Entries read by computations still running (for tests: it returns to 0)."""
        return sum(len(readers) for readers in self._readers.values())

    def invalidate_soon(self, tags: Iterable[str]) -> None:
        """Queue a runtime-wide invalidation of ``tags`` (for code that cannot await).

        Never suspends; ``await settled()`` waits for it and for its cascade.
        """
        if self._running:
            self._pending_tags.append(frozenset(tags))
            self._wake_task()

    async def settled(self) -> None:
        """Return once every queued cascade has run (and the cascades they caused)."""
        if not self._running:
            return
        if not (self._busy or self._pending or self._to_verify or self._pending_tags):
            await anyio.lowlevel.checkpoint()
            return
        # A graph that stopped with the runtime has nothing left to settle.
        with contextlib.suppress(RuntimeClosedError):
            assert self._mailbox is not None  # running
            await self._mailbox.ask(_Settle())

    # -- the listener: synchronous, never suspends ----------------------------------------------

    def _removed(self, layer: str, key: str, reason: RemovalReason) -> None:
        node = (layer, key)
        cascade = self.cascades(reason)
        self._reread(node, cascade)
        if reason != "replaced":
            self._forget_dependent(node)
        dependents = self._dependents.pop(node, None)
        if not dependents:
            return
        # Either way the edges go; only a known change takes the dependents along.
        for dependent in dependents:
            others = self._dependencies.get(dependent)
            if others is not None:
                others.discard(node)
                if not others:
                    del self._dependencies[dependent]
        if cascade:
            for layer_name, dependent_key in dependents:
                self._pending.setdefault(layer_name, set()).add(dependent_key)
            self._wake_task()
        else:
            self.released += len(dependents)

    def _reread(self, node: Node, changed: bool) -> None:
        """``node`` left: taint the open read sets that read it if it ``changed``; else they
        merely stop depending on it (the value did not change; the layer stopped keeping it,
        and an edge to an entry that is gone would never go)."""
        if changed:
            for reads in self._readers.get(node, ()):
                reads.tainted = True
        else:
            for reads in self._readers.pop(node, ()):
                reads.nodes.discard(node)

    def _forget_dependent(self, node: Node) -> None:
        for dependency in self._dependencies.pop(node, ()):
            dependents = self._dependents.get(dependency)
            if dependents is not None:
                dependents.discard(node)
                if not dependents:
                    del self._dependents[dependency]

    def reading(self, node: Node, reads: ReadSet) -> None:
        """``reads`` read ``node``: taint it if ``node`` changes before it is done."""
        if not self._running or node[0] not in self._layers:
            return
        self._watch(node[0])
        self._readers.setdefault(node, set()).add(reads)

    def done_reading(self, reads: ReadSet) -> None:
        for node in reads.nodes:
            readers = self._readers.get(node)
            if readers is not None:
                readers.discard(reads)
                if not readers:
                    del self._readers[node]

    def _watch(self, layer: str) -> None:
        if layer not in self._watching:
            self._watching[layer] = self._layers[layer].add_removal_listener(self._removed)

    def _wake_task(self) -> None:
        if self._mailbox is not None:
            self._mailbox.wake()

    # -- the task --------------------------------------------------------------------------------

    async def run(
        self,
        layers: Mapping[str, Layer],
        invalidate_all: InvalidateAll,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled. ``layers``: the runtime's live map of layers by name;
        ``invalidate_all``: the supervisor's runtime-wide invalidation (tag invalidations asked
        for with :meth:`invalidate_soon` go through it, in the supervisor's one order)."""
        self._layers = layers
        self._invalidate_all = invalidate_all
        mailbox = self._mailbox = Mailbox("the dependency graph", _INBOX_SIZE)
        self._running = True
        task_status.started()
        settle: list[_Settle] = []
        try:
            while True:
                if self._to_verify:
                    self._verify()
                elif self._pending_tags:
                    await self._invalidate_tags(self._pending_tags.pop(0))
                elif self._pending:
                    name, keys = self._pending.popitem()
                    await self._invalidate_keys(name, keys)
                else:
                    for request in settle:
                        request.answer(None)
                    settle.clear()
                    # No checkpoint between the emptiness checks above and this receive, so no
                    # listener can queue work in between and go unheard (its wake-up queues).
                    message = await mailbox.receive()
                    if message is not None:
                        settle.append(message)
        finally:
            for request in settle:
                request.answer(None)
            self._stop()

    def _verify(self) -> None:
        nodes, self._to_verify = self._to_verify, set()
        for node in nodes:
            layer = self._layers.get(node[0])
            if layer is None or node[1] not in layer:
                # Its write never landed (or it already left and was forgotten): no edges.
                self._forget_dependent(node)

    async def _invalidate_keys(self, name: str, keys: set[str]) -> None:
        layer = self._layers.get(name)
        if layer is None:
            return
        self._busy = True
        try:
            self.cascaded += await layer.invalidate(keys=keys)
        except RuntimeClosedError:
            pass  # the runtime is closing: this task is about to be cancelled too
        finally:
            self._busy = False

    async def _invalidate_tags(self, tags: frozenset[str]) -> None:
        assert self._invalidate_all is not None
        self._busy = True
        try:
            await self._invalidate_all(Selection.of(tags=tags))
        except RuntimeClosedError:
            pass
        finally:
            self._busy = False

    def _stop(self) -> None:
        self._running = False
        for unregister in self._watching.values():
            unregister()
        self._watching.clear()
        self._dependents.clear()
        self._dependencies.clear()
        self._readers.clear()
        self._pending.clear()
        self._to_verify.clear()
        self._pending_tags.clear()
        if self._mailbox is not None:
            self._mailbox.close()
