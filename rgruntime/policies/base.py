"""The interface between a layer's actor and its eviction policy.

A policy is a plain synchronous data structure: no anyio, no clock, no I/O. The actor tells it
about writes and removals in batches and asks it for a victim when the layer is over a bound, so
the same object can replay a trace of millions of requests at full speed in a benchmark.

A live layer's policy hears every hit: readers log an entry's first hit since the last
maintenance pass (and count the rest on the entry), and the pass replays the log in order,
reporting each entry's hits with ``record_access(key, deadline, count)``. A trace replay calls
``record_access`` on every hit instead.

The policy only names victims; the actor enforces the bounds (``max_entries``, ``max_size``). A
policy that sizes internal segments (``lfu``, ``tiered``) is told the capacity when it is built
(:func:`rgruntime.policies.make_policy`), and learns it from the first victim request otherwise.

Besides the replay methods, a live layer asks four more (the end of the protocol; a replay
never calls them; :class:`LayerHooks` gives the defaults of a policy with nothing to resize and no
TTL caps): ``set_capacity`` (the layer's budget moved), ``ttl_cap`` (the longest TTL a key may
keep: ``tiered`` caps an entry to its tier's), ``watch_ttl_caps`` and ``take_ttl_caps`` (the keys
whose cap changed since the last call).

``count`` matters to ``tiered``: each hit reported promotes the entry one tier (a late report
of five hits moves a cold entry up to the hot tier), so a layer that reports every hit, or the
hits it counted since it last looked, fills the hot tier with the keys read most.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["EvictionPolicy", "LayerHooks"]

K = TypeVar("K", bound=Hashable)


class EvictionPolicy(Protocol[K]):
    """What a layer's actor needs from a policy. Keys are tracked from write until removal."""

    def record_access(self, key: K, expires_at: float, count: int = 1) -> None:
        """``key`` was read ``count`` times (hits). ``expires_at`` is its deadline now (sliding
        TTLs move it).

        Keys the policy does not track are ignored: an access record may arrive after the entry
        it names was removed.
        """

    def record_write(self, key: K, size: int, expires_at: float, cost: float = 1.0) -> None:
        """``key`` was inserted or overwritten with an entry of ``size`` bytes.

        ``cost`` is what a miss on it would cost (tokens, money, seconds to recompute): only
        cost-aware policies use it.
        """

    def remove(self, key: K) -> None:
        """``key`` left the layer (evicted, deleted, expired or invalidated): stop tracking it."""

    def victim(self) -> K:
        """The key to evict next (still tracked until ``remove``). ``KeyError`` if none.

        Asking again without any other call in between names the same key. A ``remove`` of the
        key named last is taken as its eviction (policies with ghost lists remember it).
        """

    def __len__(self) -> int:
        """How many keys the policy tracks."""

    # -- what a live layer asks besides (a trace replay never calls these) -----------------------

    def set_capacity(self, capacity: int) -> None:
        """The layer's budget changed (bytes; entries when it has no byte budget)."""

    def ttl_cap(self, key: K) -> float | None:
        """The longest TTL (seconds) the policy lets ``key`` keep from now, or None for no cap
        (tiered policies cap an entry to its tier's TTL)."""

    def watch_ttl_caps(self) -> None:
        """Start recording the keys whose :meth:`ttl_cap` changes (a live layer calls it once)."""

    def take_ttl_caps(self) -> list[tuple[K, float]]:
        """The keys whose cap changed since the last call, with their cap now (only after
        :meth:`watch_ttl_caps`; keys no longer tracked are left out)."""


class LayerHooks(Generic[K]):
    """The live-layer methods of :class:`EvictionPolicy` for a policy with nothing to resize and
    no TTL caps (a base class: policies that have either override them)."""

    __slots__ = ()

    def set_capacity(self, capacity: int) -> None:
        return None

    def ttl_cap(self, key: K) -> float | None:
        return None

    def watch_ttl_caps(self) -> None:
        return None

    def take_ttl_caps(self) -> list[tuple[K, float]]:
        return []
