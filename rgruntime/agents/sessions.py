"""Sessions: a conversation with one agent, its state and history kept in the ``session`` layer."""

from __future__ import annotations

import secrets
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs

from rgruntime.agents.agent import Agent
from rgruntime.agents.arguments import shown
from rgruntime.agents.config import SessionCacheConfig
from rgruntime.errors import CapacityError, InvalidArgumentError, RGRuntimeError
from rgruntime.providers import Message
from rgruntime.runtime.layer import Layer
from rgruntime.sizing import estimate_size

__all__ = ["Session", "SessionCapacityError", "SessionNotFoundError", "SessionStore"]


class SessionNotFoundError(RGRuntimeError, LookupError):
    """The session is unknown, or its cache entry expired or was invalidated."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"no cached session {shown(session_id)}: it was never created, or it expired or was "
            "invalidated; create a new one with client.sessions.create(agent_id)"
        )


class SessionCapacityError(CapacityError):
    """A session does not fit in the ``session`` layer's byte budget.

    Session state is data, not a cache of something recomputable: the layer never evicts a
    live session to make room. Nothing was stored, and every existing session is intact.
    """

    def __init__(self, session_id: str, cause: CapacityError) -> None:
        unit = "bytes" if cause.bound == "max_size" else "entries"
        RGRuntimeError.__init__(
            self,
            f"session {session_id!r} does not fit in the {cause.layer!r} layer's budget "
            f"({cause.bound} {cause.budget:,} {unit}; it holds {cause.held:,}, the session "
            f"needs {cause.needed:,} more): live sessions are never evicted for space. Raise "
            f"the budget (cache_config={{'layers': {{'session': {{'{cause.bound}': ...}}}}}} or "
            "the runtime's max_size), delete finished sessions (client.sessions.delete) or give "
            "sessions a ttl (sessions.create(..., cache_config={'ttl': ...}))",
        )
        self.session_id = session_id
        self.layer = cause.layer
        self.needed = cause.needed
        self.held = cause.held
        self.budget = cause.budget
        self.bound = cause.bound


@attrs.frozen(kw_only=True)
class Session:
    """A session as cached: what is kept depends on its ``cache_config``."""

    id: str
    agent_id: str
    cache_config: SessionCacheConfig
    state: Mapping[str, Any] = attrs.field(factory=dict)
    history: tuple[Message, ...] = ()
    turns: int = 0
    created_at: float = attrs.field(factory=time.time)
    updated_at: float = attrs.field(factory=time.time)

    def after_turn(self, goal: str, answer: str) -> Session:
        """This session after one more exchange, history trimmed to ``history_limit``."""
        history = self.history
        if self.cache_config.context_cache:
            turn = (Message("user", goal), Message("assistant", answer))
            # Whole exchanges only: an odd limit keeps one message less, so the history
            # always starts with the user's message.
            keep = self.cache_config.history_limit - self.cache_config.history_limit % 2
            history = (*history, *turn)[-keep:] if keep else ()
        return attrs.evolve(self, history=history, turns=self.turns + 1, updated_at=time.time())


class SessionStore:
    """Sessions in the ``session`` layer, and a lock per session so turns do not interleave."""

    def __init__(self, layer: Layer) -> None:
        self._layer = layer
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def key(session_id: str) -> str:
        return f"session:{session_id}"

    async def create(
        self,
        agent: Agent,
        cache_config: SessionCacheConfig,
        *,
        session_id: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Session:
        if session_id is None:
            session_id = f"sess_{secrets.token_hex(8)}"
        elif not isinstance(session_id, str) or not session_id.isidentifier():
            raise InvalidArgumentError("session_id", session_id, "an identifier such as 'sess_123'")
        if state is not None and not isinstance(state, Mapping):
            raise InvalidArgumentError("state", state, "a dict")
        session = Session(
            id=session_id,
            agent_id=agent.id,
            cache_config=cache_config,
            state=dict(state or {}) if cache_config.state_cache else {},
        )
        async with self.lock(session_id):
            await self.save(session)
        return session

    async def load(self, session_id: str) -> Session:
        session = await self._layer.get(self.key(session_id))
        if not isinstance(session, Session):
            raise SessionNotFoundError(session_id)
        return session

    async def save(self, session: Session) -> None:
        """Store ``session``; :class:`SessionCapacityError` if it does not fit (nothing stored).

        Callers hold the session's :meth:`lock`: every write of a session's state is ordered.
        """
        key = self.key(session.id)
        try:
            await self._layer.set(
                key,
                session,
                ttl=session.cache_config.ttl,
                tags=[f"agent:{session.agent_id}", f"session:{session.id}"],
            )
        except CapacityError as full:
            raise SessionCapacityError(session.id, full) from None
        if key not in self._layer:
            # Larger than the layer's whole budget: the layer rejects such an entry without
            # raising (an oversize write). A session must not seem created and then be gone.
            stats = self._layer.stats()
            oversize = CapacityError(
                self._layer.name,
                estimate_size(session),
                stats.size_bytes,
                stats.max_size or 0,
                "max_size",
            )
            raise SessionCapacityError(session.id, oversize)

    async def delete(self, session_id: str) -> bool:
        # After a turn in flight: it would otherwise write the deleted session back.
        async with self.lock(session_id):
            return await self._layer.delete(self.key(session_id))

    def lock(self, session_id: str) -> anyio.Lock:
        """The lock that orders the turns of ``session_id`` (kept while someone holds it)."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = anyio.Lock()
        return lock

    @staticmethod
    def history_for(session: Session | None) -> Sequence[Message]:
        return session.history if session is not None else ()
