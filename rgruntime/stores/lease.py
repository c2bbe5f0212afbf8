"""Waiting for another process's load: poll the lease with backoff until it is released."""

from __future__ import annotations

from typing import Final

import anyio

from rgruntime.stores.base import RemoteStore

__all__ = ["wait_for_release"]

_FIRST_POLL: Final = 0.005
_LAST_POLL: Final = 0.2


async def wait_for_release(
    store: RemoteStore,
    key: str,
    *,
    within: float,
    first_poll: float = _FIRST_POLL,
    last_poll: float = _LAST_POLL,
) -> bool:
    """Wait until nobody holds ``key``'s lease; whether that happened within ``within`` seconds.

    Then read the key: the holder stored its result before releasing (or failed, and the reader
    takes the lease itself). Polling works on every store (Memcached has no pub/sub) and cannot
    lose a wake-up; the delay doubles from ``first_poll`` to ``last_poll``.
    """
    delay = first_poll
    with anyio.move_on_after(within):
        while await store.lease_active(key):
            await anyio.sleep(delay)
            delay = min(delay * 2, last_poll)
        return True
    return False
