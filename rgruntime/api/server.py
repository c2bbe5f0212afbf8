"""Serving the API with hypercorn inside a task group, on asyncio or trio.

``await client.serve_api(...)`` starts the server in the runtime's task group: it stops when
the client closes. Hypercorn is not cancelled directly (a cancelled ``serve`` crashes): it runs
under a shielded scope and is asked to stop through its ``shutdown_trigger``, set when the
surrounding task is cancelled. The socket is bound here (port 0 picks a free port, which the
caller learns) and handed over as ``fd://`` after ``detach()``, so that it is closed once.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs
import sniffio
from hypercorn.config import Config

from rgruntime.api.app import create_app
from rgruntime.api.auth import TokenSet
from rgruntime.errors import ConfigError

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.api.bare import BareRuntime
    from rgruntime.runtime.runtime import Runtime

__all__ = ["ApiServer", "check_bind", "serve_api", "serve_runtime_api"]

#: Seconds open connections get to finish when the server stops.
GRACEFUL_SECONDS = 2.0


@attrs.frozen
class ApiServer:
    """Where a started server listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, tokens: TokenSet) -> None:
    """Refuse what would expose the cache: a non-loopback address without tokens."""
    if not isinstance(host, str) or not host:
        raise ConfigError("host", host, "an address such as '127.0.0.1'")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("port", port, "a port number from 0 to 65535 (0: any free port)")
    if not tokens.required and not is_loopback(host):
        raise ConfigError(
            "host",
            host,
            "a loopback address (127.0.0.1, ::1, localhost) unless tokens are configured: "
            "without tokens anyone who reaches the port could read and delete the cache",
        )


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.setblocking(False)
    return sock


async def _serve(app: Any, config: Config, stop: anyio.Event) -> None:
    shutdown: Callable[[], Coroutine[Any, Any, Any]] = stop.wait
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as trio_serve

        await trio_serve(app, config, shutdown_trigger=shutdown)
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        await asyncio_serve(app, config, shutdown_trigger=shutdown)


async def run_server(
    app: Any,
    sock: socket.socket,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the bound ``sock`` (which it takes over) until cancelled."""
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = GRACEFUL_SECONDS
    config.accesslog = None
    stop = anyio.Event()
    async with anyio.create_task_group() as group:

        async def shielded() -> None:
            with anyio.CancelScope(shield=True):
                await _serve(app, config, stop)

        group.start_soon(shielded, name="rgruntime api server")
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            stop.set()


async def serve_api(
    client: ResonantGenesis | BareRuntime,
    tokens: TokenSet,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> ApiServer:
    """Start the API over ``client`` (or a bare runtime's stand-in: ``rgruntime.api.bare``) in
    its runtime's task group; returns where it listens.

    The address is bound here, so that a taken port raises ``OSError`` to the caller (and
    port 0 gives a free port, returned).
    """
    check_bind(host, port, tokens)
    app = create_app(client, tokens)
    sock = _bound_socket(host, port)
    server = ApiServer(host, sock.getsockname()[1])
    try:
        await client.runtime.start_service(
            functools.partial(run_server, app, sock), "rgruntime api"
        )
    except BaseException:
        sock.close()  # not yet detached when the service did not start
        raise
    return server


async def serve_runtime_api(
    runtime: Runtime, host: str = "127.0.0.1", port: int = 8000, *, tokens: Any = None
) -> ApiServer:
    """``runtime.serve_api(...)``: the API over a bare runtime (``rgruntime.api.bare``)."""
    from rgruntime.api.bare import BareRuntime

    return await serve_api(BareRuntime(runtime), TokenSet.of(tokens), host, port)
