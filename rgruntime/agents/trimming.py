"""At most ``max_entries`` cached entries of each agent in a layer, the oldest out first.

``response_cache.max_entries`` (the agent's answers) and ``memory_config.cache.max_entries``
(its memory lookups) both say "keep at most this many of this agent's entries". The layers know
nothing of agents, so :class:`AgentEntries` keeps each agent's cached keys, oldest first, and
deletes the oldest when one more would pass the limit.

Only keys still in the layer count: a key that left (expired, evicted, invalidated, deleted) is
dropped through the layer's removal listener. Otherwise a key gone from the middle of the list
would still count, and the next new entry would push out a live one: fewer than ``max_entries``
would stay cached.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rgruntime.runtime.layer import Layer
    from rgruntime.runtime.removals import RemovalReason

__all__ = ["AgentEntries"]


class AgentEntries:
    """Each agent's cached keys in one layer, oldest first (see the module documentation).

    Call :meth:`remember` once a key is in the layer (after the load that cached it returned,
    and only if the key is in the layer then: a load discarded by an invalidation caches
    nothing, and a key that never entered would never be reported leaving).
    """

    def __init__(self, layer: Layer) -> None:
        self._layer = layer
        self._keys: dict[str, OrderedDict[str, None]] = {}
        self._agent_of: dict[str, str] = {}
        # The removal listener is registered at the first limited entry (layers whose agents
        # have no limit are not called back on every removal), for the layer's lifetime: the
        # layer and this object live and die with the same client.
        self._listening = False

    def remember(self, agent_id: str, key: str, limit: int | None) -> None:
        """Count ``key`` as ``agent_id``'s newest entry; past ``limit``, delete the oldest.

        A key counted already keeps its place: it has not left the layer since (or the removal
        listener would have dropped it), so it is the same entry.
        """
        if limit is None:
            return
        if not self._listening:
            self._layer.add_removal_listener(self._removed)
            self._listening = True
        keys = self._keys.setdefault(agent_id, OrderedDict())
        if key in keys:
            return  # counted already (callers that joined one load each remember it)
        keys[key] = None
        self._agent_of[key] = agent_id
        while len(keys) > limit:
            oldest, _ = keys.popitem(last=False)
            del self._agent_of[oldest]
            # Trimmed, not deleted: capacity, as an eviction; what used the entry stays.
            self._layer.delete_nowait(oldest, reason="trimmed")

    def forget(self, agent_id: str) -> None:
        """Stop counting ``agent_id``'s entries (the agent was deleted; its entries go with it)."""
        for key in self._keys.pop(agent_id, ()):
            self._agent_of.pop(key, None)

    def _removed(self, layer: str, key: str, reason: RemovalReason) -> None:
        # The layer's removal listener: synchronous and quick. A replaced value is still there.
        if reason == "replaced":
            return
        agent_id = self._agent_of.pop(key, None)
        if agent_id is None:
            return
        keys = self._keys.get(agent_id)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._keys[agent_id]
