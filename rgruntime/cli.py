"""The ``rgruntime`` command (also ``python -m rgruntime``).

``rgruntime demo`` runs a simulated agent workload (several agents; repeated, reworded and new
goals; multi-turn sessions) through the client on the embedded runtime, and prints what each
cache layer saved. ``rgruntime version`` (or ``--version``) prints the version. ``rgruntime
serve`` serves the HTTP API; ``stats``, ``invalidate``, ``warm``, ``get``, ``delete``,
``analyze`` and ``diagnose`` talk to a running server (:mod:`rgruntime.cli_ops`).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Sequence

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from rgruntime import cli_ops
from rgruntime._version import __version__
from rgruntime.demo import DemoReport, WorkloadSettings, run_workload
from rgruntime.demo.workers import WorkersReport, clear_store, run_workers
from rgruntime.errors import ConfigError, RGRuntimeError
from rgruntime.stores.errors import StoreUnavailableError
from rgruntime.units import parse_size

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 0 or more")
    return value


def _size(text: str) -> str:
    try:
        parse_size(text, field="--max-size")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size ({error.accepted})") from None
    return text


_DEFAULTS = WorkloadSettings()

_DESCRIPTION = (
    "rgruntime: an async, in-process cache runtime for LLM agents. "
    "Try `rgruntime demo` (options: `rgruntime demo --help`). `rgruntime serve` serves the "
    "HTTP API (the api extra); stats, invalidate, warm, get, delete, analyze and diagnose talk "
    "to a running server (`rgruntime <command> --help`)."
)


#: The demo's options that set a WorkloadSettings field: (option, parser, field, help).
_DEMO_OPTIONS: tuple[tuple[str, Callable[[str], object], str, str], ...] = (
    ("--requests", _positive_int, "requests", "how many goals the agents are asked"),
    ("--concurrency", _positive_int, "concurrency", "requests in flight at once"),
    (
        "--seed",
        _whole_number,
        "seed",
        "the workload's random seed (the same seed makes the same requests)",
    ),
    (
        "--latency-scale",
        _non_negative_float,
        "latency_scale",
        "multiply every simulated model and tool latency (0 runs as fast as the cache allows)",
    ),
    ("--max-size", _size, "max_size", "the cache's byte budget, such as 64MB or 100KB"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rgruntime",
        description=_DESCRIPTION,
        epilog=cli_ops.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rgruntime {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    demo = commands.add_parser(
        "demo",
        help="run a simulated agent workload through the cache",
        description="Four agents answer popular, reworded and new goals and multi-turn "
        "conversations through the client, on the embedded cache, with a simulated model "
        "(offline; real latency, token counts and prices). Prints, per cache layer, the "
        "lookups, the hit rate and what the hits saved. --store runs it on a Redis or "
        "Memcached server; --workers N in N processes sharing that server, showing the "
        "answers one worker computed served to the others.",
        formatter_class=cli_ops.HelpFormatter,
    )
    demo.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="the event loop"
    )
    for option, kind, setting, text in _DEMO_OPTIONS:
        demo.add_argument(option, type=kind, default=getattr(_DEFAULTS, setting), help=text)
    demo.add_argument(
        "--store",
        default="memory",
        metavar="URL",
        help=f"where the cache lives: {cli_ops.STORE_FORMS}. The demo writes under a prefix "
        "of its own and removes it at the end",
    )
    demo.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="run the workload in this many OS processes sharing --store (a server: not "
        "memory), each with its own seed, --requests each, and show the answers one worker "
        "computed served to the others",
    )
    demo.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --workers 2 or more, then run the same workers each on its own embedded "
        "cache, to count the model calls they make without the shared store (default: on)",
    )
    commands.add_parser("version", help="print the version")
    cli_ops.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "version":
        print(__version__)
        return 0
    if arguments.command != "demo":
        return cli_ops.run_command(arguments)
    return _run_demo(arguments)


def _run_demo(arguments: argparse.Namespace) -> int:
    """``rgruntime demo``: its errors are one line on stderr and an exit code."""
    console = Console()
    try:
        settings = WorkloadSettings(
            **{setting: getattr(arguments, setting) for _, _, setting, _ in _DEMO_OPTIONS},
            # A prefix of this run's own: no earlier run's answers, and clear() removes only ours.
            cache_backend=cli_ops.store_backend(
                arguments.store, prefix=f"rgdemo-{secrets.token_hex(4)}:"
            ),
        )
        if arguments.workers > 1 and settings.cache_backend is None:
            raise ConfigError(
                "--workers", arguments.workers, "1 unless --store names a server the workers share"
            )
        cli_ops.quiet_client_logs(settings.cache_backend)
        report = anyio.run(_demo, settings, arguments, console, backend=arguments.backend)
    except StoreUnavailableError as error:
        print(f"rgruntime demo: cannot reach --store {arguments.store}: {error}", file=sys.stderr)
        return cli_ops.EXIT_UNREACHABLE
    except ImportError as error:  # the store's client library (an extra) is not installed
        print(f"rgruntime demo: {error}; {cli_ops.STORE_EXTRAS}", file=sys.stderr)
        return cli_ops.EXIT_USAGE
    except (RGRuntimeError, LookupError) as error:  # LookupError: an event loop not installed
        print(f"rgruntime demo: {error}", file=sys.stderr)
        return cli_ops.EXIT_USAGE
    if isinstance(report, WorkersReport):
        console.print(_workers_table(report, arguments.store))
        lines = _workers_notes(report)
    else:
        console.print(_report_table(report))
        lines = _report_notes(report)
        if settings.cache_backend is not None:
            lines.append(
                f"Store: {arguments.store} ({report.answered_from_cache:,} requests answered "
                "from the cache)."
            )
    for line in lines:
        console.print(line)
    return 0


def _progress(console: Console) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _demo(
    settings: WorkloadSettings, arguments: argparse.Namespace, console: Console
) -> DemoReport | WorkersReport:
    backend = settings.cache_backend
    if backend is None:
        return await _demo_in_process(settings, console)
    await cli_ops.check_store(dict(backend))
    try:
        if arguments.workers == 1:
            return await _demo_in_process(settings, console)
        return await _demo_workers(settings, arguments, console)
    finally:
        with anyio.CancelScope(shield=True):
            await clear_store(backend)


async def _demo_in_process(settings: WorkloadSettings, console: Console) -> DemoReport:
    with _progress(console) as progress:
        task = progress.add_task("requests", total=settings.requests)
        return await run_workload(settings, progress=lambda n: progress.advance(task, n))


async def _demo_workers(
    settings: WorkloadSettings, arguments: argparse.Namespace, console: Console
) -> WorkersReport:
    workers = arguments.workers
    with _progress(console) as progress:
        total = settings.requests * workers
        tasks = {"shared": progress.add_task(f"{workers} workers, shared store", total=total)}
        if arguments.baseline:
            tasks["independent"] = progress.add_task(f"{workers} workers, alone", total=total)
        return await run_workers(
            settings,
            workers,
            backend=arguments.backend,
            baseline=arguments.baseline,
            progress=lambda phase, n: progress.advance(tasks[phase], n),
        )


def _workers_table(report: WorkersReport, store: str) -> Table:
    table = Table(
        title=f"rgruntime demo: {len(report.shared)} worker processes on {store} "
        f"({report.backend})",
        caption="from other workers: exact answers this worker had not computed itself, "
        "served from the store (another worker computed them). answered from cache also "
        "counts model-layer and semantic hits. alone: the same worker on its own embedded "
        "cache.",
        caption_justify="left",
    )
    columns = ["worker", "requests", "answered from cache", "from other workers", "model calls"]
    if report.independent is not None:
        columns.append("model calls alone")
    for column in columns:
        table.add_column(column, justify="left" if column == "worker" else "right")
    alone = report.independent or (None,) * len(report.shared)
    for worker, independent in zip(report.shared, alone, strict=True):
        row = [
            str(worker.worker),
            f"{worker.requests:,}",
            f"{worker.answered_from_cache:,}",
            f"{worker.from_other_processes:,}",
            f"{worker.model_calls:,}",
        ]
        if independent is not None:
            row.append(f"{independent.model_calls:,}")
        table.add_row(*row)
    return table


def _workers_notes(report: WorkersReport) -> list[str]:
    shared = report.shared
    served = sum(worker.from_other_processes for worker in shared)
    notes = [
        f"{sum(worker.requests for worker in shared):,} requests in {len(shared)} workers made "
        f"{report.model_calls:,} model calls; {served:,} answers computed by one worker were "
        "served to another."
    ]
    alone = report.independent_model_calls
    if alone is not None:
        saved = alone - report.model_calls
        notes.append(
            f"The same {len(shared)} workers each on its own cache made {alone:,} model calls: "
            f"the shared store saved {saved:,} ({saved / alone:.0%})."
            if alone
            else "The same workers each on its own cache made no model calls."
        )
    return notes


def _report_table(report: DemoReport) -> Table:
    table = Table(
        title=f"rgruntime demo: {report.requests:,} requests on {report.backend} "
        f"in {report.elapsed:.1f} s",
        caption="lookups: reads of the layer (a request the response layer misses reads the "
        "model layer, and its tools' and memory's layers, too). work saved: each hit times the "
        "layer's mean load time, summed over requests; concurrent requests overlap, so it is "
        "model and tool time not spent, not wall-clock time.",
        caption_justify="left",
    )
    columns = ("layer", "lookups", "hits", "hit rate", "tokens saved", "cost saved", "work saved")
    for column in columns:
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in report.layers:
        table.add_row(
            layer.name,
            f"{layer.requests:,}",
            f"{layer.hits:,}",
            f"{layer.hit_rate:.1f}%" if layer.requests else "-",
            f"{layer.tokens_saved:,}",
            f"${layer.cost_saved:,.4f}",
            f"{layer.time_saved:,.1f} s" if report.latency_scale > 0 else "-",
        )
    return table


def _report_notes(report: DemoReport) -> list[str]:
    notes = [
        f"{report.requests:,} requests made {report.model_calls:,} model calls; the caches "
        f"saved {report.tokens_saved:,} tokens and ${report.cost_saved:,.4f}."
    ]
    if report.semantic:
        notes.append(
            f"Semantic caching: {report.semantic_hits:,} reworded goals were answered from the "
            "cache by meaning."
        )
    else:
        notes.append(
            "Semantic caching is off: it needs the semantic extra "
            "(pip install 'rgruntime[semantic]')."
        )
    if report.latency_scale == 0:
        notes.append("--latency-scale 0: simulated latencies are off, so no time is saved.")
    if report.sessions_refused:
        notes.append(
            f"{report.sessions_refused:,} conversations ({report.requests_refused:,} requests) "
            "were refused: their session did not fit in the session layer's budget (sessions "
            "are never evicted for space; raise --max-size)."
        )
    return notes


if __name__ == "__main__":
    sys.exit(main())
