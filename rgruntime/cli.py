"""The ``rgruntime`` command (also ``python -m rgruntime``).

``rgruntime demo`` runs a simulated agent workload (several agents; repeated, reworded and new
goals; multi-turn sessions) through the client on the embedded runtime, and prints what each
cache layer saved. ``rgruntime version`` prints the version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from rgruntime._version import __version__
from rgruntime.demo import DemoReport, WorkloadSettings, run_workload
from rgruntime.errors import RGRuntimeError

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 0 or more")
    return value


_DEFAULTS = WorkloadSettings()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rgruntime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a simulated agent workload through the cache")
    demo.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    demo.add_argument("--requests", type=_positive_int, default=_DEFAULTS.requests)
    demo.add_argument("--concurrency", type=_positive_int, default=_DEFAULTS.concurrency)
    demo.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    demo.add_argument(
        "--latency-scale",
        type=_non_negative_float,
        default=_DEFAULTS.latency_scale,
        help="multiply every simulated latency (0 runs as fast as the cache allows)",
    )
    demo.add_argument("--max-size", default="64MB", help="the runtime's byte budget")
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "version":
        print(__version__)
        return 0
    try:
        settings = WorkloadSettings(
            requests=arguments.requests,
            concurrency=arguments.concurrency,
            seed=arguments.seed,
            latency_scale=arguments.latency_scale,
            max_size=arguments.max_size,
        )
        console = Console()
        report = anyio.run(_demo, settings, console, backend=arguments.backend)
    except (RGRuntimeError, LookupError) as error:  # LookupError: an event loop not installed
        print(f"rgruntime demo: {error}", file=sys.stderr)
        return 2
    console.print(_report_table(report))
    console.print(
        f"{report.requests:,} requests made {report.model_calls:,} model calls; the caches "
        f"saved {report.tokens_saved:,} tokens and ${report.cost_saved:,.4f}."
    )
    return 0


async def _demo(settings: WorkloadSettings, console: Console) -> DemoReport:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("requests", total=settings.requests)
        return await run_workload(settings, progress=lambda n: progress.advance(task, n))


def _report_table(report: DemoReport) -> Table:
    table = Table(
        title=f"rgruntime demo: {report.requests:,} requests on {report.backend} "
        f"in {report.elapsed:.1f} s"
    )
    columns = ("layer", "requests", "hits", "hit rate", "tokens saved", "cost saved", "time saved")
    for column in columns:
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in report.layers:
        table.add_row(
            layer.name,
            f"{layer.requests:,}",
            f"{layer.hits:,}",
            f"{layer.hit_rate:.1f}%",
            f"{layer.tokens_saved:,}",
            f"${layer.cost_saved:,.4f}",
            f"{layer.time_saved:,.1f} s",
        )
    return table


if __name__ == "__main__":
    sys.exit(main())
