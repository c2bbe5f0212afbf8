"""The operations commands: ``rgruntime serve`` and the commands that talk to it (``stats``,
``invalidate``, ``warm``, ``get``, ``delete``, ``analyze``, ``diagnose``).

Errors print one plain line on stderr and exit with a code a script can test (``EXIT_CODES``).
Tables are for people; ``--json`` prints the server's answer as it came, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from rgruntime.errors import RGRuntimeError
from rgruntime.remote import DEFAULT_URL, RemoteAPI, RemoteError
from rgruntime.stores.errors import StoreUnavailableError

__all__ = [
    "EXIT_CODES",
    "STORE_EXTRAS",
    "STORE_FORMS",
    "HelpFormatter",
    "add_commands",
    "check_store",
    "quiet_client_logs",
    "run_command",
    "store_backend",
]

#: Exit codes (also in ``rgruntime --help``).
EXIT_OK: Final = 0
EXIT_FAILED_GOALS: Final = 1  # warm: some goals failed
EXIT_USAGE: Final = 2  # bad option or a value the server refused (422)
EXIT_UNREACHABLE: Final = 3
EXIT_AUTH: Final = 4  # 401 or 403
EXIT_NOT_FOUND: Final = 5
EXIT_SERVER: Final = 6  # 5xx
EXIT_NOT_AVAILABLE: Final = 7  # 501: a feature this server does not have
EXIT_CODES: Final = (
    "exit codes: 0 success; 1 some warmed goals failed; 2 bad usage or a value the server "
    "refused; 3 server unreachable; 4 token missing, invalid or without the needed scope; "
    "5 not found; 6 server error; 7 feature not available on this server"
)

TOKEN_ENV: Final = "RGRUNTIME_TOKEN"
READ_TOKEN_ENV: Final = "RGRUNTIME_READ_TOKEN"
URL_ENV: Final = "RGRUNTIME_URL"
REMOTE_COMMANDS: Final = ("stats", "invalidate", "warm", "get", "delete", "analyze", "diagnose")


#: The --store forms (demo and serve).
STORE_FORMS: Final = (
    "memory (the embedded cache), redis://HOST:PORT[/DB] (rediss:// for TLS), "
    "redis+cluster://HOST:PORT,HOST:PORT,... or memcached://HOST:PORT[,HOST:PORT...]"
)


#: What a --store URL other than memory needs installed.
STORE_EXTRAS: Final = (
    "a --store server needs its client: pip install 'rgruntime[redis]' (redis, redis+cluster) "
    "or 'rgruntime[memcached]'"
)


def store_backend(url: str, *, prefix: str | None = None) -> dict[str, Any] | None:
    """The caching guide's ``cache_backend`` dict for a --store URL; None for ``memory``.

    Raises :class:`~rgruntime.ConfigError` naming ``--store`` when the URL is not one of
    :data:`STORE_FORMS` or its parts are not acceptable (a bad port, a db that is not a number).
    """
    from rgruntime.errors import ConfigError
    from rgruntime.stores import parse_store_config

    if url == "memory":
        return None
    scheme, _, rest = url.partition("://")
    backend: dict[str, Any]
    if scheme in ("redis", "rediss"):
        backend = {"type": "redis", "url": url}
    elif scheme == "redis+cluster":
        backend = {"type": "redis_cluster", "nodes": [f"redis://{n}" for n in rest.split(",")]}
    elif scheme == "memcached":
        backend = {"type": "memcached", "servers": rest.split(",")}
    else:
        raise ConfigError("--store", url, STORE_FORMS)
    if prefix is not None:
        backend["prefix"] = prefix
    try:
        parse_store_config(backend)
    except ConfigError as error:
        raise ConfigError("--store", url, f"{STORE_FORMS} ({error.accepted})") from None
    return backend


def quiet_client_logs(cache_backend: Mapping[str, Any] | None) -> None:
    """Keep valkey-glide's warnings (a failed connection attempt, a slow command) off the
    command's output: what matters reaches it as an error (one line) or a miss. Process-wide, so
    the commands (which own their process) do it, never the library."""
    if cache_backend is None or not str(cache_backend.get("type", "")).startswith("redis"):
        return
    try:
        from glide import Logger, LogLevel
    except ImportError:
        return  # the redis extra is missing: opening the store says so
    Logger.set_logger_config(LogLevel.ERROR)


async def check_store(cache_backend: dict[str, Any]) -> None:
    """Raise :class:`~rgruntime.stores.StoreUnavailableError` unless the store answers a ping.

    A runtime opens on a store that is down (its layers run their loaders until it is back):
    the commands check first, so that a mistyped address is an error, not a slow cache.
    """
    from rgruntime.stores import make_store

    async with make_store(cache_backend) as store:
        await store.ping()


def _exit_code(status: int) -> int:
    if status == 0:
        return EXIT_UNREACHABLE
    if status in (401, 403):
        return EXIT_AUTH
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 501:
        return EXIT_NOT_AVAILABLE
    if status >= 500:
        return EXIT_SERVER
    return EXIT_USAGE


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, said the way a person reads it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default:" in text or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        if action.default is False:
            return f"{text} (default: off)"
        return super()._get_help_string(action) or text


def _command(commands: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    return parser


def _remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"the server's address (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token", default=None, help=f"the bearer token (default: ${TOKEN_ENV}, else none)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per call")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts, no table")


def add_commands(commands: Any) -> None:
    """Add serve and the remote commands to the ``rgruntime`` parser's subcommands."""
    serve = _command(
        commands,
        "serve",
        "serve the HTTP API over an embedded cache",
        "Opens a client on the embedded cache (the simulated model unless --model-url) and "
        "serves the caching guide's API Reference, /metrics and the operations routes until "
        "interrupted (Ctrl-C or SIGTERM). Without tokens only a loopback --host is accepted.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind")
    serve.add_argument("--port", type=_port, default=8000, help="the port (0: any free port)")
    serve.add_argument(
        "--token", default=None, help=f"an admin bearer token (default: ${TOKEN_ENV}, else none)"
    )
    serve.add_argument(
        "--read-token",
        default=None,
        help=f"a read-only bearer token (default: ${READ_TOKEN_ENV}, else none)",
    )
    serve.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop"
    )
    serve.add_argument(
        "--store", default="memory", metavar="URL", help=f"where the cache lives: {STORE_FORMS}"
    )
    serve.add_argument(
        "--store-prefix",
        default="rg:",
        help="what every key written to --store starts with (servers with the same prefix "
        "share their entries)",
    )
    serve.add_argument("--max-size", default="100MB", help="the cache's byte budget")
    serve.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID",
        help="create an agent with this id at start (repeatable), for warming",
    )
    serve.add_argument(
        "--model-url", default=None, help="an OpenAI-compatible server (default: simulated model)"
    )
    serve.add_argument(
        "--model-latency",
        type=float,
        default=0.05,
        help="seconds per simulated model call (with no --model-url)",
    )

    stats = _command(commands, "stats", "print cache statistics", "Statistics per layer.")
    invalidate = _command(
        commands,
        "invalidate",
        "invalidate entries",
        "Remove entries as client.cache.invalidate does: by agent, key, pattern or tags.",
    )
    invalidate.add_argument(
        "--agent-id", default=None, help="an agent's entries (with --key: its answers to that goal)"
    )
    invalidate.add_argument("--key", default=None, help="a goal (with --agent-id) or a full key")
    invalidate.add_argument("--pattern", default=None, help="a glob over keys, such as 'weather_*'")
    invalidate.add_argument("--tag", action="append", default=None, help="a tag (repeatable)")
    warm = _command(
        commands,
        "warm",
        "run goals so that their answers are cached",
        "Runs each goal once through the agent (client.cache.warm), in batches, with progress.",
    )
    warm.add_argument("agent_id", help="the agent to warm")
    warm.add_argument("goals", nargs="*", help="goals to run")
    warm.add_argument("--goals-file", type=Path, default=None, help="a file of goals, one a line")
    warm.add_argument(
        "--cache-ttl", default=None, help="the warmed answers' TTL (default: the agent's)"
    )
    warm.add_argument("--concurrency", type=int, default=None, help="goals at once (default: 4)")
    warm.add_argument("--batch", type=int, default=20, help="goals per request (progress steps)")
    for name, text in (("get", "print one cached entry"), ("delete", "delete one cached entry")):
        entry = _command(commands, name, text, f"{text[0].upper()}{text[1:]} by key.")
        entry.add_argument("key", help="the entry's key")
        entry.add_argument("--layer", default="response", help="the layer holding it")
        _remote_options(entry)
    analyze = _command(
        commands, "analyze", "miss-ratio curve and recommendations", "client.cache.analyze()"
    )
    diagnose = _command(commands, "diagnose", "why the hit rate is low", "client.cache.diagnose()")
    diagnose.add_argument("--agent-id", default=None, help="only this agent")
    diagnose.add_argument("--layer", default=None, help="only this layer")
    for parser in (stats, invalidate, warm, analyze, diagnose):
        _remote_options(parser)


def run_command(arguments: argparse.Namespace) -> int:
    """Run ``serve`` or a remote command; errors become a line on stderr and an exit code."""
    console = Console()
    try:
        if arguments.command == "serve":
            return _serve(arguments)
        with RemoteAPI(
            arguments.url or os.environ.get(URL_ENV, DEFAULT_URL),
            arguments.token or os.environ.get(TOKEN_ENV),
            timeout=arguments.timeout,
        ) as remote:
            answer = _REMOTE[arguments.command](remote, arguments, console)
    except RemoteError as error:
        print(f"rgruntime {arguments.command}: {error}", file=sys.stderr)
        return _exit_code(error.status)
    except StoreUnavailableError as error:
        print(f"rgruntime {arguments.command}: cannot reach --store: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ImportError as error:  # a store's client library (an extra) is not installed
        print(f"rgruntime {arguments.command}: {error}; {STORE_EXTRAS}", file=sys.stderr)
        return EXIT_USAGE
    except (RGRuntimeError, OSError, ValueError) as error:
        print(f"rgruntime {arguments.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if arguments.json:
            print(json.dumps(answer, indent=2), flush=True)
        else:
            _RENDER[arguments.command](answer, console)
    except BrokenPipeError:  # `rgruntime stats --json | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = arguments.command == "warm" and not answer["ok"]
    return EXIT_FAILED_GOALS if failed else EXIT_OK


# -- serve -----------------------------------------------------------------------------------


def _serve(arguments: argparse.Namespace) -> int:
    try:
        from rgruntime.api import TokenSet
        from rgruntime.api.auth import Scope
    except ImportError as error:
        print(f"rgruntime serve: {error}", file=sys.stderr)
        return EXIT_USAGE
    given: tuple[tuple[str | None, Scope], ...] = (
        (arguments.read_token or os.environ.get(READ_TOKEN_ENV), "read"),
        (arguments.token or os.environ.get(TOKEN_ENV), "admin"),
    )
    tokens: dict[str, Scope] = {value: scope for value, scope in given if value}
    TokenSet.of(tokens)  # checked before anything opens
    backend = store_backend(arguments.store, prefix=arguments.store_prefix)
    quiet_client_logs(backend)
    anyio.run(_serve_until_stopped, arguments, tokens, backend, backend=arguments.backend)
    return EXIT_OK


async def _serve_until_stopped(
    arguments: argparse.Namespace, tokens: dict[str, Any], backend: dict[str, Any] | None
) -> None:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.providers import OpenAICompatibleProvider, SimulatedProvider

    provider = (
        OpenAICompatibleProvider(arguments.model_url, os.environ.get("OPENAI_API_KEY"))
        if arguments.model_url
        else SimulatedProvider(latency=arguments.model_latency)
    )
    if backend is not None:
        await check_store(backend)
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with ResonantGenesis(
            cache_config={"max_size": arguments.max_size},
            provider=provider,
            cache_backend=backend,
        ) as client:
            for agent_id in arguments.agent:
                await client.agents.create(agent_id, agent_id=agent_id)
            server = await client.serve_api(arguments.host, arguments.port, tokens=tokens)
            print(
                f"rgruntime API on {server.url} ({arguments.backend}; store {arguments.store}; "
                f"{'tokens required' if tokens else 'no tokens: loopback only'}). Ctrl-C stops.",
                flush=True,
            )
            async for _ in signals:
                break
    print("rgruntime serve: stopped", flush=True)


# -- remote commands -------------------------------------------------------------------------


def _goals(arguments: argparse.Namespace) -> list[str]:
    goals = list(arguments.goals)
    if arguments.goals_file is not None:
        lines = arguments.goals_file.read_text(encoding="utf-8").splitlines()
        goals.extend(line.strip() for line in lines if line.strip())
    if not goals:
        raise RemoteError(422, "no goals: give them as arguments or with --goals-file")
    if arguments.batch < 1:
        raise RemoteError(422, f"--batch: {arguments.batch!r} is not a positive whole number")
    return goals


def _warm(remote: RemoteAPI, arguments: argparse.Namespace, console: Console) -> Any:
    goals = _goals(arguments)
    total: dict[str, Any] = {
        "agent_id": arguments.agent_id, "warmed": [], "already_cached": [], "not_cached": [],
        "failed": {}, "duration": 0.0,
    }  # fmt: skip
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=arguments.json,
    ) as progress:
        task = progress.add_task("warming", total=len(goals))
        for start in range(0, len(goals), arguments.batch):
            batch = goals[start : start + arguments.batch]
            report = remote.warm(
                arguments.agent_id,
                batch,
                cache_ttl=_ttl(arguments.cache_ttl),
                concurrency=arguments.concurrency,
            )
            for outcome in ("warmed", "already_cached", "not_cached"):
                total[outcome].extend(report[outcome])
            total["failed"].update(report["failed"])
            total["duration"] += report["duration"]
            progress.advance(task, len(batch))
    total["total"] = len(goals)
    total["ok"] = not total["failed"]
    return total


def _ttl(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


_REMOTE: Final[dict[str, Callable[[RemoteAPI, argparse.Namespace, Console], Any]]] = {
    "stats": lambda remote, _, __: remote.stats(),
    "invalidate": lambda remote, a, _: remote.invalidate(
        agent_id=a.agent_id, key=a.key, pattern=a.pattern, tags=a.tag
    ),
    "warm": _warm,
    "get": lambda remote, a, _: remote.get(a.key, a.layer),
    "delete": lambda remote, a, _: remote.delete(a.key, a.layer),
    "analyze": lambda remote, _, __: remote.analyze(),
    "diagnose": lambda remote, a, _: remote.diagnose(a.agent_id, a.layer),
}


def _stats_table(stats: dict[str, Any], console: Console) -> None:
    table = Table(title=f"cache: {stats['hit_rate']:.1f}% hits over {stats['requests']:,} lookups")
    table.add_column("layer", no_wrap=True, min_width=8)
    for column in (
        "lookups",
        "hit rate",
        "entries",
        "bytes",
        "evictions",
        "expired",
        "invalidated",
    ):
        table.add_column(column, justify="right")
    for name, layer in stats["layers"].items():
        table.add_row(
            name,
            f"{layer['requests']:,}",
            f"{layer['hit_rate']:.1f}%" if layer["requests"] else "-",
            f"{layer['entries']:,}",
            f"{layer['size_bytes']:,}",
            f"{layer['evictions']:,}",
            f"{layer['expirations']:,}",
            f"{layer['invalidations']:,}",
        )
    console.print(table)


def _record_table(record: Any, console: Console) -> None:
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    items = record.items() if isinstance(record, dict) else [("value", record)]
    for name, value in items:
        table.add_row(str(name), value if isinstance(value, str) else json.dumps(value))
    console.print(table)


def _warm_summary(report: dict[str, Any], console: Console) -> None:
    console.print(
        f"{report['agent_id']}: {len(report['warmed'])} warmed, "
        f"{len(report['already_cached'])} already cached, {len(report['not_cached'])} not "
        f"cacheable, {len(report['failed'])} failed (of {report['total']})."
    )
    for goal, error in report["failed"].items():
        console.print(f"  failed: {goal!r}: {error}")


_RENDER: Final[dict[str, Callable[[Any, Console], None]]] = {
    "stats": _stats_table,
    "invalidate": lambda answer, console: console.print(
        f"{answer['invalidated']} entries invalidated."
    ),
    "warm": _warm_summary,
    "get": _record_table,
    "delete": lambda answer, console: console.print(
        f"deleted {answer['key']} from {answer['layer']}."
    ),
    "analyze": _record_table,
    "diagnose": _record_table,
}
