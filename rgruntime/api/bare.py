"""The HTTP API over a bare runtime (``runtime.serve_api(...)``): what a runtime without the
guide's client can answer.

The routes are the client's (one route table, one OpenAPI document): stats, invalidation by key,
pattern or tags, reading and deleting an entry, key listings, Prometheus metrics and health are
answered from the runtime; warming needs agents (``404 agent_not_found``: a bare runtime has
none), and savings, metric series, analysis, diagnosis and alerts are counted by the client
(``501 not_implemented``, naming it).
"""

from __future__ import annotations

from typing import Any

from rgruntime.agents.agent import AgentNotFoundError
from rgruntime.api.problems import ApiError
from rgruntime.errors import InvalidArgumentError
from rgruntime.runtime.runtime import Runtime
from rgruntime.runtime.stats import CacheStats

__all__ = ["BareRuntime"]


class _Agents:
    def get(self, agent_id: str) -> Any:
        raise AgentNotFoundError(agent_id)


class _RuntimeCache:
    """The part of ``client.cache`` the routes call, answered by a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def get_stats(self) -> CacheStats:
        return self._runtime.stats()

    async def invalidate(
        self,
        *,
        agent_id: str | None = None,
        key: str | None = None,
        pattern: str | None = None,
        tags: Any = None,
    ) -> int:
        if agent_id is not None:
            raise InvalidArgumentError(
                "agent_id",
                agent_id,
                "no agent_id on a bare runtime (it has no agents): key, pattern or tags",
            )
        return await self._runtime.invalidate(key=key, pattern=pattern, tags=tags)

    async def get(self, key: str, *, layer: str, default: Any = None) -> Any:
        return await self._runtime.layer(layer).get(key, default)

    async def delete(self, key: str, *, layer: str) -> bool:
        return await self._runtime.layer(layer).delete(key)

    def get_savings(self, period: str) -> Any:
        raise ApiError(
            501,
            "not_implemented",
            "savings are counted by the client (ResonantGenesis.serve_api), not a bare runtime",
        )


class BareRuntime:
    """A runtime dressed as the client the routes expect (see the module documentation)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cache = _RuntimeCache(runtime)
        self.agents = _Agents()
