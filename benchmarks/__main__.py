"""``python -m benchmarks [SUITE ...] [--quick] [--rounds N] [--list]``: run benchmark suites.

With no SUITE, every registered suite runs. The exit status is 0 whatever the figures say: a
benchmark informs, it does not gate (acceptance checks print PASS or FAIL instead).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from benchmarks import SUITES, RunOptions, Suite
from benchmarks._harness import environment_line, make_console


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {suite.name:<10} {suite.summary}" for suite in SUITES.values())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="rgruntime benchmarks, each beside its peers measured in the same run.",
        epilog=f"suites:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="short smoke run (indicative only)")
    parser.add_argument(
        "--rounds", type=_positive, metavar="N", help="measurement rounds (default: per suite)"
    )
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    return parser


def _select(parser: argparse.ArgumentParser, names: Sequence[str]) -> list[Suite]:
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}; known: {', '.join(SUITES)}")
    # Keep the order given, drop repeats; no name at all means every suite.
    return [SUITES[name] for name in dict.fromkeys(names or SUITES)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(parser.epilog)
        return 0
    suites = _select(parser, args.suites)
    options = RunOptions(quick=args.quick, rounds=args.rounds)
    console = make_console()
    console.print(environment_line(package for suite in suites for package in suite.packages))
    for suite in suites:
        suite.runner()(options, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
