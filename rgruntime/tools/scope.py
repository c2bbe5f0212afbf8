"""The request an entry is written for: what a cached write made while computing an answer
carries, and whether the answer is being recomputed after an invalidation.

``client.sessions.execute`` opens a :func:`request_scope` around the run of an agent. Model
outputs and tool results written inside it (by the built-in loop, a runner's ``context``, a
runner's own ``client.models.complete`` or a ``@cache`` tool) carry the request's tags: its
agent (``agent:<id>``), its goal (``agent:<id>:goal:<hash>``) and its ``cache_tags``. So
invalidating the answer by agent, goal or tag removes what was computed for it too.

``refresh`` is set when the answer was invalidated by a change (``client.cache.invalidate``, an
update of the agent, a tool or a memory): the run then reads no cached model output or tool
result written before (each is computed again and replaces the old one), so the next identical
request after an invalidation really computes a fresh answer. Each key is refreshed once per
run: a second identical call in the same run reads what the first wrote.

A context variable: tasks started inside the scope (a runner's task group) inherit it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import attrs

__all__ = ["RequestScope", "current_request", "request_scope", "write_tags"]


@attrs.define
class RequestScope:
    """The tags a request's writes carry; whether (and which keys) it refreshes."""

    tags: frozenset[str]
    refresh: bool = False
    refreshed: set[tuple[str, str]] = attrs.field(factory=set)

    def take_refresh(self, layer: str, key: str) -> bool:
        """True the first time this run meets ``key`` of ``layer`` while refreshing."""
        if not self.refresh or (layer, key) in self.refreshed:
            return False
        self.refreshed.add((layer, key))
        return True


_current: ContextVar[RequestScope | None] = ContextVar("rgruntime_request_scope", default=None)


def current_request() -> RequestScope | None:
    """The scope of the request being computed in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def request_scope(tags: Iterable[str], *, refresh: bool = False) -> Iterator[RequestScope]:
    """Writes made inside carry ``tags``; with ``refresh``, cached reads are computed again."""
    scope = RequestScope(frozenset(tags), refresh)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def write_tags(own: Iterable[str]) -> frozenset[str]:
    """``own`` tags plus those of the request being computed (if any)."""
    scope = _current.get()
    return frozenset(own) | scope.tags if scope is not None else frozenset(own)
