"""Streams replayed with their labels as the judge: the error bound against static thresholds.

``python -m benchmarks.semantic_eval --part replay [--quick]`` (part of ``nox -s eval_semantic``;
``RGRUNTIME_REPLAY_MARKDOWN=file`` also writes the acceptance rows as a Markdown table).

Streams, tuning ones first (the policy's settings were chosen on them), then held-out ones:

- **GPTCache** (``gptcache_mock_data.json``): every ``origin`` cached in one partition (one entry
  per text: byte-identical origins are one entry), every ``similar`` asked. The judge: the
  matched entry's text is the query's own origin. Even rows (tuning), odd rows (held out), all.
- **QQP, single pass** (``qqp_pairs.jsonl.gz``): each pair in its own partition, ``a`` cached,
  ``b`` asked; the judge: the pair's ``duplicate`` label. The evaluation's tuning sample and its
  confirmation sample (held out).
- **QQP, repeated origins**: questions that appear in at least :data:`ANCHOR_MIN_PAIRS` labelled
  pairs, each cached in a partition of its own, every question paired with it asked there, all
  shuffled into one stream: an entry is matched several times over the stream (the setting of
  vCache's evaluation). Two disjoint sets of anchors: tuning and held out.

For each query the cache's best lexically verified candidate at or above the policy's floor is
found once (:class:`rgruntime.semantic.SemanticCache`, the default embedder and verifier), then
:class:`~rgruntime.semantic.error_bound.ErrorBoundPolicy` replays the stream: *serve* counts a hit
(right or wrong by the label, which the policy never sees), *verify* a miss whose label the policy
learns, *miss* a miss. Each static threshold (verified, the candidate found at that threshold) is
replayed on the same stream. The acceptance, per stream, bound and seed (:class:`Row`):

- the served error rate's 95% Wilson upper end is at most the bound + 1 point (nothing served:
  no error rate, within);
- the hit rate is at least that of the best static threshold whose error rate is no higher.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import numpy as np
from rich.console import Console

from benchmarks._harness import stderr_note
from benchmarks.semantic_eval import Counts, _table, cache_started, data_dir, qqp_samples
from rgruntime.semantic.error_bound import (
    ErrorBoundPolicy,
    ErrorBoundSettings,
    wilson_interval,
)

__all__ = ["BOUNDS", "Stream", "replay", "run_replay"]

BOUNDS: Final = (0.01, 0.02, 0.05)
STATIC_THRESHOLDS: Final = tuple(round(0.75 + 0.01 * step, 2) for step in range(25))
SEEDS: Final = (0, 1, 2)
STREAM_SEED: Final = 7
Z95: Final = 1.959964  # two-sided 95%


@dataclass
class Query:
    """One asked text: its candidate for the policy, and its outcome under each static
    threshold (None: no hit; True / False: a right / wrong hit)."""

    row: int
    partition: str
    key: str | None
    similarity: float
    correct: bool
    static: dict[float, bool | None] = field(default_factory=dict)
    #: The similarity of the next entry of the partition (another origin: another answer).
    runner_up: float | None = None
    #: The verifier found the texts the same question by rule.
    equivalent: bool = False


@dataclass
class Stream:
    name: str
    queries: list[Query]


@dataclass
class Result(Counts):
    """Hits of one replay, and what it verified."""

    verified: int = 0
    judged_wrong: int = 0
    #: The policy's threshold at the end of the stream (None: it serves nowhere).
    threshold: float | None = None

    @property
    def error_rate(self) -> float:
        return self.wrong / self.hits if self.hits else 0.0

    @property
    def upper(self) -> float:
        return wilson_interval(self.wrong, self.hits, Z95)[1] if self.hits else 0.0


class StoredVectors:
    """The default embedder, with the vectors of every text it embedded kept on disk.

    A replay embeds 20,000 QQP texts (~20 minutes on this machine under load); a second run
    with other rules or settings then reads them back. Kept in ``RGRUNTIME_BENCH_CACHE``
    (default ``~/.cache/rgruntime-bench``): outside the repository, since they derive from
    the evaluation data, which must not ship.
    """

    def __init__(self, stream: str) -> None:
        from benchmarks.semantic_speed import _cache_dir
        from rgruntime.semantic import make_embedder

        self._inner = make_embedder()
        self.name = self._inner.name
        self.dimension = self._inner.dimension
        self._path = _cache_dir() / f"replay-{stream}-{self.name}.npz"
        self._stored: dict[str, Any] = {}
        if self._path.is_file():
            with np.load(self._path, allow_pickle=False) as stored:
                texts = [str(text) for text in stored["texts"]]
                self._stored = dict(zip(texts, stored["vectors"], strict=True))
        self._new = False

    async def embed(self, texts: Sequence[str]) -> Any:
        missing = [text for text in dict.fromkeys(texts) if text not in self._stored]
        if missing:
            vectors = await self._inner.embed(missing)
            self._stored.update(zip(missing, vectors, strict=True))
            self._new = True
        return np.stack([self._stored[text] for text in texts])

    def save(self) -> None:
        if self._new:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            texts = list(self._stored)
            np.savez(
                self._path, texts=np.array(texts), vectors=np.stack(list(self._stored.values()))
            )


async def _collect(
    name: str,
    entries: Sequence[tuple[str, str, str]],
    asked: Sequence[tuple[int, str, str, set[str]]],
    floor: float,
    vectors: str | None = None,
) -> Stream:
    """``entries``: (partition, key, text) cached; ``asked``: (row, partition, text, right keys)."""
    queries: list[Query] = []
    async with anyio.create_task_group() as group:
        stored = StoredVectors(vectors or name)
        cache = await cache_started(
            group, embedder=stored, embedding_cache_size=len(entries) + len(asked) + 10
        )
        texts = [entry[2] for entry in entries] + [query[2] for query in asked]
        for start in range(0, len(texts), 512):
            await cache.embedder.embed(texts[start : start + 512])
            stderr_note(f"replay {name}: embedded {min(start + 512, len(texts))}/{len(texts)}")
        stored.save()
        for partition, key, text in entries:
            await cache.add(partition, key, text)
        for row, partition, text, right in asked:
            match = await cache.lookup(partition, text, floor)
            query = Query(
                row,
                partition,
                None if match is None else match.key,
                0.0 if match is None else match.similarity,
                match is not None and match.key in right,
                runner_up=None if match is None or match.runner_up is None else match.runner_up[1],
                equivalent=match is not None and match.equivalent,
            )
            for threshold in STATIC_THRESHOLDS:
                if match is None or threshold <= floor:
                    found = match if threshold <= floor else None
                elif match.similarity >= threshold:
                    found = match  # the same candidate is still the first verified one
                else:
                    found = await cache.lookup(partition, text, threshold)
                query.static[threshold] = None if found is None else found.key in right
            queries.append(query)
        group.cancel_scope.cancel()
    return Stream(name, queries)


async def gptcache_stream(floor: float) -> Stream:
    data = json.loads((data_dir() / "gptcache_mock_data.json").read_text())
    first_row: dict[str, int] = {}
    for number, row in enumerate(data):
        first_row.setdefault(row["origin"], number)
    entries = [("text", f"text-{number}", origin) for origin, number in first_row.items()]
    order = list(range(len(data)))
    random.Random(STREAM_SEED).shuffle(order)
    asked = [
        (n, "text", data[n]["similar"], {f"text-{first_row[data[n]['origin']]}"}) for n in order
    ]
    return await _collect("GPTCache", entries, asked, floor)


async def qqp_stream(
    floor: float, quick: bool, sample_number: int = 1, name: str = "QQP"
) -> Stream:
    """QQP's confirmation sample (``sample_number`` 1; 0: the tuning sample)."""
    _, sample = qqp_samples(quick)[sample_number]
    entries = [(f"pair-{n}", f"a-{n}", row["a"]) for n, row in enumerate(sample)]
    asked = [
        (n, f"pair-{n}", row["b"], {f"a-{n}"} if row["duplicate"] else set())
        for n, row in enumerate(sample)
    ]
    return await _collect(name, entries, asked, floor, vectors="QQP")


#: Repeated-origin streams: QQP questions that appear in at least this many labelled pairs.
ANCHOR_MIN_PAIRS: Final = 4
ANCHORS_PER_SPLIT: Final = 600
ANCHORS_PER_SPLIT_QUICK: Final = 150
ANCHOR_SEED: Final = 11


def qqp_anchor_groups(quick: bool) -> tuple[list[tuple[str, list[tuple[str, bool]]]], ...]:
    """Two disjoint sets of QQP questions that appear in many labelled pairs, each with its
    partners: (tuning, held out). Each question is an "origin" asked about several times."""
    from benchmarks.semantic_eval import qqp_rows

    partners: dict[str, dict[str, bool]] = {}
    for row in qqp_rows():
        for cached, asked in ((row["a"], row["b"]), (row["b"], row["a"])):
            partners.setdefault(cached, {})[asked] = bool(row["duplicate"])
    anchors = sorted(text for text, found in partners.items() if len(found) >= ANCHOR_MIN_PAIRS)
    random.Random(ANCHOR_SEED).shuffle(anchors)
    count = ANCHORS_PER_SPLIT_QUICK if quick else ANCHORS_PER_SPLIT
    tuning, held_out = anchors[:count], anchors[count : 2 * count]
    return tuple(
        [(anchor, sorted(partners[anchor].items())) for anchor in split]
        for split in (tuning, held_out)
    )


async def qqp_anchored_stream(floor: float, quick: bool, split: int) -> Stream:
    """Repeated origins: each anchor question cached in a partition of its own, each of its
    labelled partners asked there, the asks of every anchor shuffled into one stream (so an
    entry is matched several times, spread over the stream)."""
    groups = qqp_anchor_groups(quick)[split]
    entries = [(f"anchor-{n}", f"anchor-{n}", anchor) for n, (anchor, _) in enumerate(groups)]
    asked = [
        (n, f"anchor-{n}", text, {f"anchor-{n}"} if duplicate else set())
        for n, (_, found) in enumerate(groups)
        for text, duplicate in found
    ]
    random.Random(STREAM_SEED).shuffle(asked)
    name = "QQP repeated origins " + ("(tuning)" if split == 0 else "(held out)")
    return await _collect(name, entries, asked, floor, vectors="QQP-anchored")


def replay(stream: Stream, bound: float, seed: int, **settings: Any) -> Result:
    """The stream through a fresh policy with the error bound ``bound``."""
    policy = ErrorBoundPolicy(
        ErrorBoundSettings(max_error_rate=bound, **settings),
        random_draw=random.Random(seed).random,
    )
    result = Result(asked=len(stream.queries))
    for query in stream.queries:
        if query.key is None:
            continue
        decision = policy.decide(
            query.partition,
            query.key,
            query.similarity,
            query.runner_up,
            equivalent=query.equivalent,
        )
        if decision.action == "serve":
            result.right += query.correct
            result.wrong += not query.correct
        elif decision.action == "verify":
            result.verified += 1
            result.judged_wrong += not query.correct
            policy.record(query.partition, query.key, decision, query.correct)
    result.threshold = policy.threshold
    return result


def static(stream: Stream, threshold: float) -> Result:
    result = Result(asked=len(stream.queries))
    for query in stream.queries:
        outcome = query.static[threshold]
        if outcome is not None:
            result.right += outcome
            result.wrong += not outcome
    return result


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


@dataclass(frozen=True)
class Row:
    """One replay of one stream at one bound, and its acceptance."""

    stream: str
    bound: float
    seed: int
    ours: Result
    #: The best static threshold whose error rate on the stream is no higher than ours (None:
    #: no static threshold is that accurate), and its figures.
    static_threshold: float | None
    static: Result | None

    @property
    def within(self) -> bool:
        """The served error rate's 95% Wilson upper end is at most the bound + 1 point."""
        return self.ours.upper <= self.bound + 0.01

    @property
    def enough(self) -> bool:
        """Hit rate at least that of the best static threshold with no higher error rate."""
        return self.ours.hit_rate >= (self.static.hit_rate if self.static else 0.0)

    def cells(self) -> list[str]:
        ours = self.ours
        upper = _pct(ours.upper) if ours.hits else "— (none served)"
        best = (
            "none"
            if self.static is None or self.static_threshold is None
            else f"{self.static_threshold:.2f}: {_pct(self.static.hit_rate)}, "
            f"{_pct(self.static.error_rate)}"
        )
        return [
            self.stream,
            f"{self.bound:.0%}",
            str(self.seed),
            str(ours.hits),
            str(ours.wrong),
            _pct(ours.error_rate),
            upper,
            _pct(ours.hit_rate),
            f"{ours.verified} ({ours.judged_wrong})",
            best,
            "PASS" if self.within else "FAIL",
            "PASS" if self.enough else "FAIL",
        ]


ROW_COLUMNS: Final = (
    "stream",
    "bound",
    "seed",
    "served",
    "wrong",
    "error",
    "Wilson 95% upper",
    "hit rate",
    "verified (judged wrong)",
    "best static with error <= ours: threshold: hit rate, error",
    "error <= bound+1pt",
    "hit rate >= static",
)


def rows(stream: Stream, **settings: Any) -> list[Row]:
    """Each bound and seed replayed, beside the best static threshold no less accurate."""
    statics = {threshold: static(stream, threshold) for threshold in STATIC_THRESHOLDS}
    found: list[Row] = []
    for bound in BOUNDS:
        for seed in SEEDS:
            ours = replay(stream, bound, seed, **settings)
            # Exactly as the acceptance reads: among the static thresholds whose error rate on
            # this stream is no higher than ours, the one with the highest hit rate (one that
            # serves nothing has no error rate and no hits: it never beats anything).
            qualifying = [
                (result.hit_rate, threshold)
                for threshold, result in statics.items()
                if result.hits and result.error_rate <= ours.error_rate
            ]
            threshold = max(qualifying)[1] if qualifying else None
            best = statics[threshold] if threshold is not None else None
            found.append(Row(stream.name, bound, seed, ours, threshold, best))
    return found


def report(console: Console, stream: Stream) -> list[Row]:
    """The static thresholds, then each bound's replays and its acceptance."""
    table = _table(
        f"{stream.name} ({len(stream.queries)} asked): static thresholds, verified",
        ("threshold", "right", "wrong", "hit rate", "error rate"),
    )
    for threshold in STATIC_THRESHOLDS:
        result = static(stream, threshold)
        table.add_row(
            f"{threshold:.2f}",
            str(result.right),
            str(result.wrong),
            _pct(result.hit_rate),
            _pct(result.error_rate),
        )
    console.print(table)
    found = rows(stream)
    table = _table(f"{stream.name}: max_error_rate, replayed", ROW_COLUMNS)
    for row in found:
        table.add_row(*row.cells())
    console.print(table)
    return found


def markdown(found: Sequence[Row]) -> str:
    """The acceptance rows as a Markdown table (docs/semantic.md)."""
    lines = ["| " + " | ".join(ROW_COLUMNS) + " |", "|" + "---|" * len(ROW_COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in found]
    return "\n".join(lines)


def _split(stream: Stream, name: str, odd: bool) -> Stream:
    return Stream(name, [query for query in stream.queries if query.row % 2 == odd])


async def _streams(quick: bool) -> list[Stream]:
    """Tuning streams (the policy's settings were chosen on these), then held-out ones."""
    floor = ErrorBoundSettings().floor
    gptcache = await gptcache_stream(floor)
    return [
        _split(gptcache, "GPTCache even rows (tuning)", odd=False),
        await qqp_stream(floor, quick, 0, "QQP tuning sample (tuning)"),
        await qqp_anchored_stream(floor, quick, 0),
        _split(gptcache, "GPTCache odd rows (held out)", odd=True),
        Stream("GPTCache all rows (half tuning)", gptcache.queries),
        await qqp_stream(floor, quick, 1, "QQP confirmation sample (held out)"),
        await qqp_anchored_stream(floor, quick, 1),
    ]


#: Other orders of each stream: the acceptance is read on one order; how much of it is luck.
ORDERS: Final = 10
ORDERS_QUICK: Final = 3
ORDER_SEED: Final = 100


def order_robustness(console: Console, streams: Sequence[Stream], orders: int) -> None:
    """Each stream asked in ``orders`` other random orders: the checks that pass, per bound."""
    table = _table(
        f"The same checks over {orders} other orders of each stream (seeds {ORDER_SEED}...): "
        "passing / run",
        ("stream", *(f"{bound:.0%}: error, hits" for bound in BOUNDS), "all", "served (mean)"),
    )
    for stream in streams:
        passed = {bound: [0, 0] for bound in BOUNDS}
        served: list[int] = []
        for order in range(orders):
            queries = list(stream.queries)
            random.Random(ORDER_SEED + order).shuffle(queries)
            for row in rows(Stream(stream.name, queries)):
                passed[row.bound][0] += row.within
                passed[row.bound][1] += row.enough
                served.append(row.ours.hits)
        runs = orders * len(SEEDS)
        total = sum(sum(counts) for counts in passed.values())
        table.add_row(
            stream.name,
            *(f"{within}, {enough} / {runs}" for within, enough in passed.values()),
            f"{total} / {2 * runs * len(BOUNDS)}",
            f"{sum(served) / len(served):.0f}",
        )
    console.print(table)


#: (tuning stream, held-out stream) pairs of :func:`_streams`, by position.
TUNED_ON: Final = ((0, 3), (1, 5), (2, 6))


def tuned_statics(console: Console, streams: Sequence[Stream], found: Sequence[Row]) -> None:
    """The comparison without hindsight: for each bound, the static threshold a user would
    choose on the tuning stream (the most hits with an error rate within the bound there),
    applied to its held-out stream, beside what the policy served there."""
    table = _table(
        "A static threshold chosen on the tuning stream, on the held-out stream (no hindsight)",
        (
            "held-out stream",
            "bound",
            "threshold (tuning)",
            "held out: served, wrong, error, Wilson upper",
            "error <= bound+1pt",
            "ours: served / wrong (seeds)",
        ),
    )
    for tuning, held_out in TUNED_ON:
        for bound in BOUNDS:
            accurate = [
                (result.hit_rate, threshold)
                for threshold in STATIC_THRESHOLDS
                if (result := static(streams[tuning], threshold)).hits
                and result.error_rate <= bound
            ]
            ours = ", ".join(
                f"{row.ours.hits} / {row.ours.wrong}"
                for row in found
                if row.stream == streams[held_out].name and row.bound == bound
            )
            if not accurate:
                table.add_row(streams[held_out].name, f"{bound:.0%}", "none", "", "", ours)
                continue
            threshold = max(accurate)[1]
            result = static(streams[held_out], threshold)
            table.add_row(
                streams[held_out].name,
                f"{bound:.0%}",
                f"{threshold:.2f}",
                f"{result.hits}, {result.wrong}, {_pct(result.error_rate)}, {_pct(result.upper)}",
                "PASS" if result.upper <= bound + 0.01 else "FAIL",
                ours,
            )
    console.print(table)


def run_replay(console: Console, quick: bool) -> None:
    streams = anyio.run(_streams, quick)
    found = [row for stream in streams for row in report(console, stream)]
    checks = [check for row in found for check in (row.within, row.enough)]
    console.print(f"[bold]Replay acceptance[/bold]: {sum(checks)} of {len(checks)} checks pass")
    tuned_statics(console, streams, found)
    order_robustness(console, streams, ORDERS_QUICK if quick else ORDERS)
    path = os.environ.get("RGRUNTIME_REPLAY_MARKDOWN")
    if path:
        Path(path).write_text(markdown(found) + "\n")
        console.print(f"  the acceptance rows as Markdown: {path}")
    learned = replay(streams[4], 0.02, SEEDS[0]).threshold  # GPTCache, all rows
    run_cold_pairs(console, learned)


# -- cold pairs --------------------------------------------------------------------------------

#: Near-miss and paraphrase families written for issue 17 ("tuning-4" tuned the verifier's
#: rules, "heldout-3" and "heldout-4" never tuned anything), beside the older near-miss set.
FAMILIES: Final = Path(__file__).resolve().parent / "data" / "semantic_families.jsonl"
GUIDE_PAIR: Final = ("What's the weather?", "How's the weather today?")
COLD_MAX_FALSE_HITS: Final = 0.02


async def _matches(rows: list[dict[str, object]], floor: float) -> list[tuple[float, bool] | None]:
    """Each pair alone (one cached text, one asked): the similarity of the lexically verified
    candidate at or above ``floor`` and whether the rules found the two equivalent, None when
    there is no candidate."""
    found: list[tuple[float, bool] | None] = []
    async with anyio.create_task_group() as group:
        cache = await cache_started(group)
        for number, row in enumerate(rows):
            await cache.add(f"cold-{number}", f"cold-{number}", str(row["cached"]))
        for number, row in enumerate(rows):
            match = await cache.lookup(f"cold-{number}", str(row["query"]), floor)
            found.append(None if match is None else (match.similarity, match.equivalent))
        group.cancel_scope.cancel()
    return found


def _served_cold(number: int, candidate: tuple[float, bool] | None) -> bool:
    """What a fresh default policy (no history) does with the candidate."""
    if candidate is None:
        return False
    similarity, equivalent = candidate
    decision = ErrorBoundPolicy().decide(
        f"cold-{number}", "cached", similarity, equivalent=equivalent
    )
    return decision.action == "serve"


def _share(hits: list[bool]) -> str:
    return f"{sum(hits)} / {len(hits)}" + (f" ({_pct(sum(hits) / len(hits))})" if hits else "")


def run_cold_pairs(console: Console, learned: float | None) -> None:
    """``learned``: the threshold the policy learned on the whole GPTCache stream at 2%."""
    from benchmarks.semantic_eval import NEAR_MISS

    rows = [json.loads(line) for line in NEAR_MISS.read_text().splitlines() if line.strip()]
    rows += [json.loads(line) for line in FAMILIES.read_text().splitlines() if line.strip()]
    rows.append(
        {"cached": GUIDE_PAIR[0], "query": GUIDE_PAIR[1], "same_answer": True, "split": "guide"}
    )
    candidates = anyio.run(_matches, rows, ErrorBoundSettings().floor)
    cold = [_served_cold(n, candidate) for n, candidate in enumerate(candidates)]
    warm = [
        candidate is not None and learned is not None and candidate[0] >= learned
        for candidate in candidates
    ]
    after = "none" if learned is None else f"{learned:.3f}"
    table = _table(
        "Pairs alone (one cached text, one asked), max_error_rate 0.02: served cold (no "
        f"history), and from the threshold learned on the GPTCache stream ({after})",
        (
            "split",
            "cold: near misses served",
            "cold: paraphrases served",
            "cold: false hits <= 2%",
            "learned: near misses served",
            "learned: paraphrases served",
            "learned: false hits <= 2%",
        ),
    )
    for split in dict.fromkeys(str(row.get("split", "tuning")) for row in rows):
        cells = [split]
        for served in (cold, warm):
            chosen = [
                (bool(row["same_answer"]), hit)
                for row, hit in zip(rows, served, strict=True)
                if str(row.get("split", "tuning")) == split
            ]
            near = [hit for same, hit in chosen if not same]
            para = [hit for same, hit in chosen if same]
            verdict = sum(near) <= COLD_MAX_FALSE_HITS * len(near)
            cells += [_share(near), _share(para), ("PASS" if verdict else "FAIL") if near else ""]
        table.add_row(*cells)
    console.print(table)
    guide = candidates[-1]
    console.print(
        f"  the guide's pair {GUIDE_PAIR}: "
        + (
            "no lexically verified candidate"
            if guide is None
            else f"{guide[0]:.3f}" + (", equivalent by rule" if guide[1] else "")
        )
        + f"; cold: {_hit(cold[-1])}; learned: {_hit(warm[-1])}"
    )


def _hit(served: bool) -> str:
    return "a hit" if served else "a miss"
