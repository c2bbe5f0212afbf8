"""Keeping near caches coherent: one task per store follows its invalidation channel.

Every change a remote layer makes (a write, a delete, an invalidation, a clear) is published on
the store's channel after the store has it. In every other process, this task hears it and drops
the near copies it names, in the layer the store names carry (``response:k`` is the key ``k`` of
the layer ``response``). Messages of this process are skipped: it changed its own copies first.

While the subscription is down, near copies are served at most
:data:`~rgruntime.runtime.store_link.FALLBACK_NEAR_TTL` (the link's ``near_ttl`` then falls back to
it), and when it comes back every near copy on the store is dropped (``resync``): what was
published meanwhile is lost.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Final

import anyio
import anyio.abc

from rgruntime.errors import RuntimeClosedError
from rgruntime.runtime.layer import Layer
from rgruntime.runtime.remote_layer import RemoteLayer
from rgruntime.runtime.store_link import SharedStore
from rgruntime.stores.base import Invalidation
from rgruntime.stores.errors import StoreError

__all__ = ["follow_invalidations"]

log = logging.getLogger("rgruntime.stores")

_FIRST_RETRY: Final = 0.05
_LAST_RETRY: Final = 2.0


async def follow_invalidations(
    shared: SharedStore,
    layers: Mapping[str, Layer],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Subscribe to ``shared``'s channel and drop what it names in ``layers`` (a live view: layers
    added later are followed too); resubscribe after failures.

    Reports itself started once subscribed, or after the first failed attempt: a runtime opens
    with its server away, and its near copies are then bounded by the fallback TTL.
    """
    started = False
    retry = _FIRST_RETRY
    while True:
        try:
            async with shared.store.invalidations() as messages:
                shared.subscribed = True
                retry = _FIRST_RETRY
                if started:  # changes published while we were away were lost
                    await _route(shared, layers, Invalidation(resync=True))
                else:
                    started = True
                    task_status.started()
                async for message in messages:
                    await _route(shared, layers, message)
        except StoreError as error:
            log.warning("%s: the invalidation channel failed: %s", shared.description, error)
        finally:
            shared.subscribed = False
        if not started:
            started = True
            task_status.started()
        await anyio.sleep(retry)
        retry = min(retry * 2, _LAST_RETRY)


async def _route(shared: SharedStore, layers: Mapping[str, Layer], message: Invalidation) -> None:
    if message.origin and message.origin == shared.store.instance_id:
        return
    # Reads in flight must not install what they read of these entries.
    shared.changed(None if message.drops_everything or message.tags else message.keys)
    for layer in list(layers.values()):
        if isinstance(layer, RemoteLayer) and layer.link.shared is shared:
            # A layer that stopped (the runtime is closing) has nothing left to drop.
            with contextlib.suppress(RuntimeClosedError):
                await _drop(layer, message)


async def _drop(layer: RemoteLayer, message: Invalidation) -> None:
    if message.drops_everything:
        await layer.drop_near(cleared=message.clear, resync=message.resync)
        return
    link = layer.link
    keys = [key for key in map(link.key_of, message.keys) if key is not None]
    tags = [tag for tag in map(link.tag_of, message.tags) if tag is not None]
    if "" in tags:  # the layer's own tag: the layer was cleared
        await layer.drop_near(cleared=True)
    elif keys or tags:
        await layer.drop_near(keys, tags)
