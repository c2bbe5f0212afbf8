"""The caching guide's "Session Caching" section: session state, history, resume.

Run: python examples/guide_sessions.py [asyncio|trio]
"""

from __future__ import annotations

import sys

import anyio

from rgruntime import ResonantGenesis, SessionNotFoundError


async def main() -> None:
    async with ResonantGenesis() as client:
        agent = await client.agents.create(name="Support Bot", agent_id="agent_123")

        # Configure session caching
        session = await client.sessions.create(
            agent_id="agent_123",
            cache_config={"state_cache": True, "context_cache": True, "history_limit": 4},
        )
        for goal in ("I cannot log in.", "I reset my password.", "The email never came."):
            await client.sessions.execute(agent_id=agent.id, goal=goal, session_id=session.id)

        # Resume cached session
        session = await client.sessions.resume(session_id=session.id, use_cache=True)
        print(f"resumed after {session.turns} turns, history kept: {len(session.history)} messages")

        try:
            await client.sessions.resume(session_id="sess_unknown", use_cache=True)
        except SessionNotFoundError as error:
            print("unknown session:", error.session_id)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
