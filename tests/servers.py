"""Real Redis, Redis Cluster and Memcached servers for the tests, as child processes.

Each server listens on a free loopback port, is polled until it answers, and is stopped (SIGTERM,
then SIGKILL) when its fixture ends. When ``redis-server`` or ``memcached`` is missing, this module
installs the Debian packages (root and apt-get needed) and otherwise raises
:class:`ServersUnavailableError`: the store tests must fail loudly, never skip, when the servers
they test cannot run. Flags and timings are in /work/shared/DEPENDENCY-NOTES.md ("Servers and
clients for remote stores"). Used by tests/stores/conftest.py and benchmarks/stores.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Protocol, TypeVar

__all__ = [
    "MemcachedServer",
    "RedisClusterServers",
    "RedisServer",
    "ServersUnavailableError",
    "ensure_server_binaries",
    "free_port",
    "running_memcached",
    "running_redis",
    "running_redis_cluster",
    "started",
]

_BINARIES: Final = ("redis-server", "redis-cli", "memcached")
_INSTALL: Final = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server memcached"
)
_READY_TIMEOUT: Final = 15.0
_CLUSTER_TIMEOUT: Final = 30.0


class _Startable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=_Startable)


class ServersUnavailableError(RuntimeError):
    """The server binaries are missing and could not be installed, or a server did not start."""


def ensure_server_binaries() -> None:
    """Install redis-server and memcached when they are missing; raise if that is impossible."""
    missing = [name for name in _BINARIES if shutil.which(name) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServersUnavailableError(
            f"{', '.join(missing)} not found, and installing needs root and apt-get: run "
            f"`{_INSTALL}` (the remote-store tests need real servers and do not skip)"
        )
    result = subprocess.run(
        _INSTALL, shell=True, capture_output=True, text=True, check=False, timeout=600
    )
    still_missing = [name for name in _BINARIES if shutil.which(name) is None]
    if result.returncode != 0 or still_missing:
        raise ServersUnavailableError(
            f"`{_INSTALL}` failed (exit {result.returncode}); still missing: "
            f"{', '.join(still_missing) or 'nothing'}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


def free_port() -> int:
    """A TCP port nothing listens on right now (another process may take it: rare, retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ask(port: int, request: bytes, timeout: float = 1.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        return connection.recv(65536)


def _poll(
    probe: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen[bytes]
) -> None:
    """Call ``probe()`` until it returns True; fail with the server's own output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise ServersUnavailableError(f"{what} exited with {process.returncode}:\n{output}")
        with contextlib.suppress(OSError):
            if probe():
                return
        time.sleep(0.02)
    raise ServersUnavailableError(f"{what} did not answer within {timeout:g} s")


class _ServerProcess:
    """One server binary on one port: start, stop, kill and restart it."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        _poll(self._answers, f"{self.name} on port {self.port}", _READY_TIMEOUT, self._process)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the clients."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a hung server)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _stop(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            process.send_signal(how)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer(_ServerProcess):
    """``redis-server`` with no persistence, optionally a cluster node."""

    def __init__(self, directory: Path, port: int | None = None, *, cluster: bool = False) -> None:
        super().__init__("redis-server", port or free_port())
        self.directory = directory
        self.cluster = cluster
        self.bus_port = free_port() if cluster else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        command = [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--logfile", "",
            "--enable-debug-command", "local",
        ]  # fmt: skip
        if self.cluster:
            command += [
                "--cluster-enabled", "yes",
                # Always given: the default (port + 10000) is invalid above port 55535.
                "--cluster-port", str(self.bus_port),
                "--cluster-config-file", str(self.directory / f"nodes-{self.port}.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        return command

    def _answers(self) -> bool:
        return _ask(self.port, b"PING\r\n").startswith(b"+PONG")

    def command(self, *words: str) -> bytes:
        """Send one inline command (``server.command("REPLICAOF", "NO", "ONE")``); its reply."""
        return _ask(self.port, " ".join(words).encode() + b"\r\n")

    def cli(self, *arguments: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *arguments],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout


class MemcachedServer(_ServerProcess):
    """``memcached`` with 64 MB and no UDP."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__("memcached", port or free_port())

    def _command(self) -> list[str]:
        command = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            command += ["-u", "root"]  # memcached refuses to run as root without it
        return command

    def _answers(self) -> bool:
        return _ask(self.port, b"version\r\n").startswith(b"VERSION")


class RedisClusterServers:
    """Three master nodes (no replicas) forming one cluster over all 16,384 slots."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [RedisServer(directory, cluster=True) for _ in range(size)]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [node.address for node in self.nodes]
        self.nodes[0].cli(
            "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"
        )
        self.wait_until_ok()

    def wait_until_ok(self) -> None:
        deadline = time.monotonic() + _CLUSTER_TIMEOUT
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in node.cli("cluster", "info") for node in self.nodes):
                return
            time.sleep(0.05)
        raise ServersUnavailableError(
            f"the cluster did not reach cluster_state:ok in {_CLUSTER_TIMEOUT:g} s"
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def started(server: S) -> Iterator[S]:
    """``server`` started (its binary installed if missing), and stopped when the block ends."""
    ensure_server_binaries()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    ensure_server_binaries()
    with (
        tempfile.TemporaryDirectory(prefix="rg-redis-") as directory,
        started(RedisServer(Path(directory))) as server,
    ):
        yield server


@contextlib.contextmanager
def running_memcached() -> Iterator[MemcachedServer]:
    ensure_server_binaries()
    with started(MemcachedServer()) as server:
        yield server


@contextlib.contextmanager
def running_redis_cluster(size: int = 3) -> Iterator[RedisClusterServers]:
    ensure_server_binaries()
    with (
        tempfile.TemporaryDirectory(prefix="rg-cluster-") as directory,
        started(RedisClusterServers(Path(directory), size)) as cluster,
    ):
        yield cluster
