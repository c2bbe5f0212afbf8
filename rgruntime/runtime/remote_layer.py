"""A layer whose entries live in a remote store, with its own map as a near cache in front.

:class:`RemoteLayer` keeps :class:`~rgruntime.runtime.layer.Layer`'s API and its hit path: a
near-cache hit is the same dictionary read as an in-process hit. What changes is behind a near
miss and after a write:

- ``get`` reads the store; a live entry found there is installed in the near cache with what is
  left of its TTL (at most the link's ``near_ttl``) and counted as a hit;
- ``get_or_load`` / ``lookup`` run one load per key in this process (as every layer does); the
  load looks in the store first, then takes the key's lease so that one process in all runs the
  loader, and writes the result to the store before giving the lease back. The others wait for
  the lease and read what the holder wrote; a holder that crashed loses the lease after
  ``lease_ttl``;
- ``set`` / ``delete`` / ``invalidate`` / ``clear`` change the near cache at once, then the store,
  and publish what changed on the store's invalidation channel, where every other process's
  :mod:`~rgruntime.runtime.coherence` task drops its near copies;
- ``set_nowait`` / ``delete_nowait`` queue the store's side for the link's writer task.

``get_nowait``, ``peek``, ``ttl``, ``keys``, ``export`` and ``in`` see the near cache only (they
never suspend). A read racing with a change (here or in another process) never installs what it
read: the store's change counter moved while it was in flight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextvars import ContextVar
from typing import Any, Literal

import anyio
import attrs

from rgruntime.config import LayerConfig
from rgruntime.runtime.arguments import Selection, check_cost, check_key, check_tags
from rgruntime.runtime.clock import LoopClock
from rgruntime.runtime.entry import NEVER, Entry, next_sequence
from rgruntime.runtime.layer import Layer, Unstorable
from rgruntime.runtime.layer_actor import LayerActor
from rgruntime.runtime.layer_state import LayerState
from rgruntime.runtime.loads import Load
from rgruntime.runtime.stats import LayerStatistics
from rgruntime.runtime.store_link import Found, StoreLink
from rgruntime.sizing import weigh
from rgruntime.stores.errors import StoreError, StoreUnavailableError
from rgruntime.stores.validation import check_ttl as check_store_ttl

__all__ = ["RemoteLayer", "new_remote_layer"]

# The store names one cascade of invalidations went through (edges on the server may form a
# cycle; each name is followed once per chain).
_cascading: ContextVar[set[str] | None] = ContextVar("rgruntime_cascading", default=None)


class RemoteLayer(Layer):
    """A layer backed by a remote store (see the module documentation)."""

    def __init__(
        self,
        state: LayerState,
        actor: LayerActor,
        sizer: Callable[[Any], int],
        link: StoreLink,
    ) -> None:
        super().__init__(state, actor, sizer)
        self._link = link

    def __repr__(self) -> str:
        return (
            f"<RemoteLayer {self.name!r} on {self._link.shared.description} "
            f"near entries={len(self._entries)}>"
        )

    @property
    def link(self) -> StoreLink:
        return self._link

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, key: str, default: object = None) -> Any:
        try:
            entry = self._entries[key]
        except (KeyError, TypeError):
            return await self._read_through(key, default)
        if entry.expires_at > self._now():
            fresh = entry.fresh_hits
            if not fresh:
                self._log(entry)
            entry.fresh_hits = fresh + 1
            return entry.value
        return await self._read_through(key, default)

    async def _read_through(self, key: str, default: object) -> Any:
        check_key(key)
        self._check_open()
        if not self._enabled:
            return self._miss(key, default)
        link = self._link
        shared = link.shared
        changes, started = shared.changes, next_sequence()
        found = await link.read(key)
        if found is None:
            return self._miss(key, default)
        self._state.remote_hits += 1
        current = self._entries.get(key)
        if (
            link.near_cache
            and not shared.changed_since(changes, link.name(key))
            and (current is None or current.sequence < started)
        ):
            self._install_found(key, found)
        return found.value

    def _install_found(self, key: str, found: Found) -> None:
        """Keep what the store answered as a near copy, if it can be kept (else skip it)."""
        ttl = self._near_ttl_of(found)
        try:
            size = weigh(key, found.value, None, self._sizer)
            max_size = self._state.max_size
            if max_size is not None and size > max_size:
                return
            expires_at = NEVER if ttl is None else self._now() + ttl
            entry = Entry(key, found.value, expires_at, ttl, size, found.tags, found.cost)
            self._install(entry)
        except Exception:  # a value the sizer cannot weigh, or no room: served, not kept
            return

    def _near_ttl_of(self, found: Found) -> float | None:
        given = (found.ttl, self._link.near_ttl(), self.config.max_ttl)
        limits = [limit for limit in given if limit is not None]
        return min(limits) if limits else None

    # -- loads ---------------------------------------------------------------------------------

    async def _produce(self, load: Load, cost: float | None) -> tuple[Any, float]:
        link = self._link
        found = await link.read(load.key)
        if found is not None:
            return self._found(load, found)
        token = await link.take_lease(load.key)
        if token is None:  # another process is loading it: wait, then read what it wrote
            await link.wait_for_release(load.key)
            found = await link.read(load.key)
            if found is not None:
                return self._found(load, found)
            token = await link.take_lease(load.key)  # it failed or crashed: load here
        try:
            value, price = await super()._produce(load, cost)
            if not load.discarded:  # an invalidation during the load keeps it out everywhere
                try:
                    data = link.encode(value, load.ttl, load.tags, price)
                except Exception as error:
                    raise Unstorable(error) from error
                try:
                    await link.write(load.key, data, load.ttl, load.tags)
                except StoreUnavailableError:
                    raise  # strict: the load fails as the server did
                except StoreError as error:
                    raise Unstorable(error) from error  # refused by the server
        finally:
            if token:
                with anyio.CancelScope(shield=True):
                    await link.release_lease(load.key, token)
        return value, price

    def _found(self, load: Load, found: Found) -> tuple[Any, float]:
        load.found_elsewhere = True
        load.ttl = self._near_ttl_of(found)
        load.tags = found.tags
        return found.value, found.cost

    def _keep_loaded(self, load: Load, value: Any, size: int | None, cost: float) -> None:
        if not self._link.near_cache:
            return
        if load.found_elsewhere:
            self._install_found(load.key, Found(value, load.ttl, load.tags, cost))
        else:
            super()._keep_loaded(load, value, size, cost)

    # -- writes --------------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> None:
        """Cache ``value`` here and in the store (see :meth:`Layer.set`); other processes drop
        their near copies. A value the store's serializer cannot encode raises
        :class:`~rgruntime.InvalidArgumentError` naming where it sits, and changes nothing."""
        write = self._write_here(key, value, ttl, tags, size, cost)
        if write is None:
            return
        try:
            await self._link.write(*write)
        except StoreError as error:
            if not isinstance(error, StoreUnavailableError):
                # Refused by the server (a value it will not take): not kept here either, so
                # that this process does not serve what no other one can.
                Layer.delete_nowait(self, key)
            raise

    def set_nowait(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | str | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float | None = None,
    ) -> None:
        """:meth:`set`, with the store's side queued for the layer's writer task."""
        write = self._write_here(key, value, ttl, tags, size, cost)
        if write is not None:
            self._link.write_soon(*write)

    def _write_here(
        self,
        key: str,
        value: Any,
        ttl: float | str | None,
        tags: Iterable[str],
        size: int | None,
        cost: float | None,
    ) -> tuple[str, bytes, float | None, frozenset[str]] | None:
        """Check and encode a write, then change the near cache; what the store must get."""
        self._check_open()
        key = check_key(key)
        checked_tags = check_tags(tags)
        seconds = self._resolve_ttl(ttl)
        check_store_ttl(seconds)  # what no store takes is refused before anything changes
        price = self._default_cost() if cost is None else check_cost(cost)
        if not self._enabled:
            return None
        data = self._link.encode(value, seconds, checked_tags, price)
        self._link.shared.changed([self._link.name(key)])
        if self._link.near_cache:
            Layer.set_nowait(
                self, key, value, ttl=seconds, tags=checked_tags, size=size, cost=price
            )
        else:
            self._discard_load(key)
        if seconds is not None and seconds <= 0:
            return None  # expired as soon as written: nothing to share
        return key, data, seconds, checked_tags

    async def delete(self, key: str) -> bool:
        """Remove ``key`` here, in the store and in other processes' near caches (and what
        any process computed from it)."""
        live = Layer.delete_nowait(self, key)
        self._link.shared.changed([self._link.name(key)])
        present = await self._link.delete(key)
        await self._cascade({self._link.name(key)})
        return present or live

    def delete_nowait(self, key: str, *, reason: Literal["deleted", "trimmed"] = "deleted") -> bool:
        live = Layer.delete_nowait(self, key, reason=reason)
        self._link.shared.changed([self._link.name(key)])
        self._link.delete_soon(key)
        return live

    async def invalidate_selection(self, selection: Selection) -> int:
        """Remove the selected entries here and in the store; other processes drop theirs."""
        broad = bool(selection.tags) or selection.pattern is not None
        self._link.shared.changed(None if broad else map(self._link.name, selection.keys))
        local = await Layer.invalidate_selection(self, selection)
        remote, removed = await self._link.invalidate(selection)
        await self._cascade(removed)
        return max(local, remote or 0)

    # -- the dependency graph's edges on the server ----------------------------------------------

    def record_edges(self, key: str, dependencies: Iterable[tuple[Layer, str]]) -> None:
        """``key`` was computed from ``dependencies``: keep the edges from those on this store
        on the server, so that whichever process invalidates one removes ``key`` too."""
        link = self._link
        names = [
            layer.link.name(dependency)
            for layer, dependency in dependencies
            if isinstance(layer, RemoteLayer) and layer.link.shared is link.shared
        ]
        link.add_edges_soon(key, names, link.edge_ttl)

    async def _cascade(self, names: AbstractSet[str]) -> None:
        """Invalidate what the server records as computed from the store ``names``, in the
        layers on this store; once per name along one chain (edges may form a cycle). Names the
        server could not be asked about (it went away) are kept by the link, and looked up by
        its writer task when it answers (:meth:`remove_dependents`)."""
        with _chain() as visited:
            new = names - visited
            visited.update(new)
            if new:
                await self._invalidate_in_layers(await self._link.dependents(new))

    async def remove_dependents(self, names: AbstractSet[str], dependents: Iterable[str]) -> None:
        """Invalidate ``dependents`` (store names recorded as computed from the store ``names``,
        which are gone), in their layers on this store, as one chain from ``names``: the link's
        writer task calls it when a removal kept during an outage has reached the server."""
        with _chain() as visited:
            visited.update(names)
            await self._invalidate_in_layers(dependents)

    async def _invalidate_in_layers(self, names: Iterable[str]) -> None:
        by_layer: dict[str, list[str]] = {}
        for name in names:
            layer_name, _, key = name.partition(":")
            by_layer.setdefault(layer_name, []).append(key)
        layers = self._link.shared.layers
        for layer_name, keys in by_layer.items():
            layer = layers.get(layer_name)
            if layer is not None:
                await layer.invalidate(keys=keys)

    async def clear(self) -> int:
        self._link.shared.changed()
        local = await Layer.clear(self)
        await self._link.clear()
        return local

    # -- what other processes changed ----------------------------------------------------------

    async def drop_near(
        self,
        keys: Iterable[str] = (),
        tags: Iterable[str] = (),
        *,
        cleared: bool = False,
        resync: bool = False,
    ) -> None:
        """Forget near copies another process changed (the store is not told: it knows).

        ``cleared``: the layer was cleared; ``resync``: changes may have been missed (the
        channel was interrupted), so every near copy goes, without being taken for a change.
        """
        if cleared or resync:
            await self._forget_all("dropped" if resync else "cleared")
            return
        for key in keys:
            self._remove_local(key, "invalidated")
        tags = frozenset(tags)
        if tags:
            await Layer.invalidate_selection(self, Selection(tags=tags))

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self) -> LayerStatistics:
        statistics = super().statistics()
        return attrs.evolve(statistics, store=self._link.health(self._state.remote_hits))


@contextlib.contextmanager
def _chain() -> Iterator[set[str]]:
    """The store names the current cascade went through (a new cascade starts empty)."""
    outer = _cascading.get()
    if outer is not None:
        yield outer
        return
    visited: set[str] = set()
    token = _cascading.set(visited)
    try:
        yield visited
    finally:
        _cascading.reset(token)


def new_remote_layer(
    config: LayerConfig, clock: LoopClock, sizer: Callable[[Any], int], link: StoreLink
) -> tuple[RemoteLayer, LayerActor]:
    """A remote layer and its actor, sharing one state (the supervisor starts the actor and the
    link's writer)."""
    state = LayerState(config, clock)
    actor = LayerActor(state)
    layer = RemoteLayer(state, actor, sizer, link)
    link.shared.layers[config.name] = layer
    return layer, actor
