"""The semantic cache: texts indexed by meaning, one index per partition, owned by one actor.

    cache = SemanticCache("minilm")
    async with anyio.create_task_group() as group:
        await group.start(cache.run)
        await cache.add(partition, key, "What's the weather in Paris?")
        match = await cache.lookup(partition, "How's the weather in Paris today?")
        # match.key == key, match.similarity == 0.92..., or None

It maps texts to cache *keys*; the values stay in the cache layer that owns the keys. The layer
tells this cache when a key leaves (evicted, expired, invalidated, deleted) by calling
:meth:`SemanticCache.remove` or :meth:`SemanticCache.remove_many`: synchronous, a few dictionary
operations, safe on the event loop's thread at any moment.

**Partitions are exact.** A partition is an opaque string that the caller builds from everything
that changes the answer except the text (agent, version, model, temperature, tools, system prompt,
tenant, layer...). The partition selects the index before any vector search: a lookup never sees
another partition's vectors, so two tenants never share an answer, not even for identical texts.

**Who does what.**

- Callers embed their text in a worker thread (through an embedding cache) and search a partition
  in one of the search threads that :meth:`run` keeps (:mod:`rgruntime.semantic.searcher`; through
  ``anyio.to_thread.run_sync`` while it does not run): the event loop never computes a vector or
  walks a graph.
- The actor task alone changes indices: it batches the inserts and deletions queued since its last
  pass and applies them per partition in worker-thread calls of a few inserts each (a search waits
  while a write holds its partition), so writes are serialized.
- :meth:`~SemanticCache.remove` hides a key at once, on the caller's thread: the key leaves the
  live map, and every search result is checked against that map on the event loop's thread before
  it is returned. A removed key is therefore never returned, even before the actor has deleted its
  vector; the actor deletes it in its next pass (no orphan vectors stay behind).
- An ``add`` whose key is removed (or added again) while its text is being embedded or inserted is
  dropped: like the cache layers' loads, the newer event wins.

**Verification.** The live neighbours that reach the threshold (the ``candidates`` nearest) are
ordered by the lexical verifier's :meth:`~rgruntime.semantic.LexicalVerifier.rank_score` (the
similarity plus a small weight of the words they share with the query), then checked in that order
by the lexical check (:class:`~rgruntime.semantic.LexicalVerifier`) and the optional user verifier:
the first that passes is the match. A candidate that fails is counted by reason.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import numpy as np

from rgruntime.errors import InvalidArgumentError, RuntimeClosedError
from rgruntime.runtime._actor import Mailbox, Request
from rgruntime.semantic._sharded import ShardedDict
from rgruntime.semantic.embedder import (
    DEFAULT_EMBEDDER,
    WORKER_THREADS,
    Embedder,
    Vectors,
    make_embedder,
    worker_limiter,
)
from rgruntime.semantic.embedding_cache import CachedEmbedder
from rgruntime.semantic.errors import EmbeddingFailedError
from rgruntime.semantic.index import HnswSettings, PartitionIndex
from rgruntime.semantic.records import (
    HISTOGRAM_BINS,
    SemanticMatch,
    SemanticStats,
    SimilarityHistogram,
)
from rgruntime.semantic.searcher import Searcher
from rgruntime.semantic.verify import (
    ACCEPTED,
    LexicalVerifier,
    RejectionReason,
    UserVerifier,
    Verdict,
)
from rgruntime.validation import similarity as check_similarity

__all__ = ["DEFAULT_THRESHOLD", "SemanticCache"]

#: The default similarity threshold, chosen on the evaluation in ``docs/semantic.md``.
DEFAULT_THRESHOLD: Final = 0.91

#: Format of :meth:`SemanticCache.save`; bumped when it changes. 2: a graph may hold projected
#: vectors (``projection.npy`` beside it), which a reader of format 1 would misread silently. 3: a
#: graph's labels are rows of its index, which keeps its free rows (a reader of 2 would return
#: rows as labels).
SAVE_FORMAT: Final = 3
#: Formats :meth:`SemanticCache.load` reads (1 is 2 without projected graphs; before 3, a graph's
#: labels were the cache's labels, and such a graph is built again when it is loaded).
_READABLE_FORMATS: Final = (1, 2, 3)

_INBOX_SIZE: Final = 256
#: Inserts per worker-thread call of the actor (see ``_apply_partition``).
_APPLY_SLICE: Final = 8
#: A graph whose searches have lately taken at most this long is searched on the event loop's
#: thread when no other search is waiting (100,000 vectors: ~0.13-0.3 ms). A loop that stands
#: still for half a millisecond is far under the 5 ms its other tasks are promised.
INLINE_SEARCH_SECONDS: Final = 0.0005
#: ... and asks for at most this many neighbours (a lookup asks for its candidates plus the
#: removals not yet applied: thousands after a large invalidation, milliseconds of search).
INLINE_SEARCH_K: Final = 64


class _Partition:
    """An index and what the cache knows about it (touched on the event loop's thread only)."""

    __slots__ = ("index", "keys", "pending_deletes")

    def __init__(self, index: PartitionIndex) -> None:
        self.index = index
        self.keys: ShardedDict[int, str] = ShardedDict()  # label -> key, for live labels
        self.pending_deletes: list[int] = []


class _Insert(Request[None]):
    """Index ``vector`` under ``key`` (answered once applied, or failed)."""

    __slots__ = ("key", "partition", "text", "token", "vector")

    def __init__(self, partition: str, key: str, text: str, vector: Vectors, token: object) -> None:
        super().__init__()
        self.partition = partition
        self.key = key
        self.text = text
        self.vector = vector
        self.token = token


class _Save(Request[None]):
    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class _Load(_Save):
    __slots__ = ()


class _Flush(Request[None]):
    __slots__ = ()


_Message = _Insert | _Save | _Flush


def _check_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgumentError(
            "threshold", value, "a cosine similarity between 0 and 1, such as 0.91"
        )
    return float(value)


def _check_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(field, value, "a string")
    return value


class SemanticCache:
    """Cache keys indexed by the meaning of a text (see the module documentation).

    ``embedder`` is an :class:`~rgruntime.semantic.Embedder` or a registered name (default
    ``"minilm"``). ``threshold`` is the default cosine similarity in [0, 1] a match must reach.
    ``verifier`` is the lexical check (``None`` turns it off for every lookup); ``user_verifier``
    an async ``(query, cached_text, similarity) -> bool`` that runs after it. ``candidates`` bounds
    how many neighbours above the threshold a lookup may verify. ``embedding_cache_size`` bounds
    the embedding cache (0 turns it off).
    """

    def __init__(
        self,
        embedder: Embedder | str = DEFAULT_EMBEDDER,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        verifier: LexicalVerifier | None = LexicalVerifier(),  # noqa: B008 - immutable
        user_verifier: UserVerifier | None = None,
        candidates: int = 4,
        embedding_cache_size: int = 10_000,
        hnsw: HnswSettings = HnswSettings(),  # noqa: B008 - immutable
    ) -> None:
        inner = make_embedder(embedder) if isinstance(embedder, str) else embedder
        if not isinstance(inner, Embedder):
            raise InvalidArgumentError(
                "embedder", embedder, "an embedder name or an object with name, dimension, embed()"
            )
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise InvalidArgumentError("candidates", candidates, "a positive whole number")
        if user_verifier is not None and not callable(user_verifier):
            raise InvalidArgumentError("user_verifier", user_verifier, "an async callable")
        self.threshold = check_similarity(threshold, "threshold")
        self.embedder = CachedEmbedder(inner, max_entries=embedding_cache_size)
        self.verifier = verifier
        self.user_verifier = user_verifier
        self.candidates = candidates
        self.hnsw = hnsw
        self._partitions: dict[str, _Partition] = {}
        # The live keys: their label (unique for ever: a key added again gets a new one), their
        # partition and their text. Maps of strings and ints, which the garbage collector does
        # not track: 100,000 keys as objects (or tuples) made every full collection ~50 ms
        # longer, during which the event loop stands still. Sharded: four dicts of 87,000 keys
        # growing in step rebuilt their tables at once, 11 ms on the event loop's thread.
        self._labels: ShardedDict[str, int] = ShardedDict()
        self._partition_of: ShardedDict[str, str] = ShardedDict()
        self._texts: ShardedDict[str, str] = ShardedDict()
        # Adds in flight: key -> the token of the newest add(); a removal drops the key.
        self._pending: ShardedDict[str, object] = ShardedDict()
        self._next_label = 0
        # Made when run() starts: a cache that never runs holds no stream.
        self._mailbox: Mailbox[_Message] | None = None
        # Lookups search in its threads while run() runs (anyio.to_thread otherwise).
        self._searcher = Searcher(WORKER_THREADS)
        # Searches under way (in place or in a thread): a search is done in place only alone.
        self._searching = 0
        self._running = False
        self._closed = False
        # Statistics.
        self._lookups = 0
        self._hits = 0
        self._empty = 0
        self._below = 0
        self._rejected = 0
        self._embedding_failures = 0
        self._rejections: Counter[RejectionReason] = Counter()
        self._histogram = [0] * HISTOGRAM_BINS
        self._adds = 0
        self._removals = 0

    def __repr__(self) -> str:
        return (
            f"<SemanticCache embedder={self.embedder.name!r} entries={len(self._labels)} "
            f"partitions={len(self._partitions)}>"
        )

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, key: object) -> bool:
        return key in self._labels

    # -- the callers' side ---------------------------------------------------------------------

    async def add(self, partition: str, key: str, text: str) -> None:
        """Index ``text`` under ``key`` in ``partition``; returns once lookups can find it.

        Adding a key again replaces its text (and partition). The same key with the same text
        and partition is a no-op. A removal of ``key`` while this call runs cancels it.
        """
        _check_text(partition, "partition")
        _check_text(key, "key")
        _check_text(text, "text")
        if not self._running:
            raise RuntimeClosedError("the semantic cache is not running (start run() first)")
        if key in self._labels:
            if self._partition_of[key] == partition and self._texts[key] == text:
                return
            self.remove(key)
        token = object()
        self._pending[key] = token
        try:
            vector = await self._embedded(text)
        except BaseException:
            if self._pending.get(key) is token:
                del self._pending[key]
            raise
        if self._pending.get(key) is not token:
            return  # removed or added again while embedding
        await self._require_mailbox().ask(_Insert(partition, key, text, vector, token))

    @property
    def embedding_failures(self) -> int:
        """Texts the embedder failed to embed so far (as in :meth:`stats`, without the rest)."""
        return self._embedding_failures

    async def _embedded(self, text: str) -> Vectors:
        try:
            vectors = await self.embedder.embed([text])
        except Exception as error:  # cancellation is no failure: it goes through
            self._embedding_failures += 1
            raise EmbeddingFailedError(self.embedder.name, error) from error
        vector: Vectors = vectors[0]
        return vector

    def remove(self, key: str) -> bool:
        """Take ``key`` out of the cache at once; True if it was indexed (or being indexed).

        Synchronous and cheap: for the layer to call whenever an entry leaves (evicted, expired,
        invalidated, deleted). Lookups stop returning ``key`` immediately; the actor deletes its
        vector in its next pass.
        """
        pending = self._pending.pop(key, None) is not None
        label = self._labels.pop(key, None)
        if label is None:
            return pending
        del self._texts[key]
        part = self._partitions[self._partition_of.pop(key)]
        del part.keys[label]
        part.pending_deletes.append(label)
        self._removals += 1
        self._request_pass()
        return True

    def remove_many(self, keys: Iterable[str]) -> int:
        """:meth:`remove` each key; return how many were indexed."""
        return sum(self.remove(key) for key in keys)

    def clear(self) -> int:
        """Remove every key (synchronously, like :meth:`remove`); return how many there were."""
        return self.remove_many(list(self._labels) + list(self._pending))

    async def lookup(
        self,
        partition: str,
        text: str,
        threshold: float | None = None,
        *,
        verify: bool = True,
    ) -> SemanticMatch | None:
        """The key of ``partition`` whose text best matches ``text``, or None.

        ``threshold`` overrides the cache's default similarity (cosine, in [0, 1]). ``verify``
        runs the lexical check and the user verifier (True by default).
        """
        _check_text(partition, "partition")
        _check_text(text, "text")
        minimum = self.threshold if threshold is None else _check_threshold(threshold)
        self._lookups += 1
        part = self._partitions.get(partition)
        if part is None or not part.keys:
            self._empty += 1
            return None
        vector = self.embedder.cached(text)
        if vector is None:
            vector = await self._embedded(text)
        # Removed labels may still be in the index: ask for enough to get past them.
        k = self.candidates + len(part.pending_deletes)
        found = await self._search(part.index, vector, k)
        # Each label's live key, read once: after a search of a large partition every map is
        # out of the CPU's caches, and each read costs a few misses. Valid until the first
        # await that can suspend (a user verifier's); re-read after it.
        live: dict[int, str | None] = {}
        candidates = self._candidates(part, found, minimum, live)
        if verify and self.verifier is not None and len(candidates) > 1:
            candidates = self._ranked(text, candidates)
        suspends = verify and self.user_verifier is not None
        tried = 0
        for label, key, similarity, cached_text in candidates:
            if suspends and self._live_key(part, label) != key:
                continue  # removed while an earlier candidate was being verified
            tried += 1
            verdict = await self._verified(text, cached_text, similarity) if verify else None
            if verdict is not None and not verdict.accepted:
                continue
            if suspends:
                # Checked again after the last await, so that nothing removed meanwhile is
                # returned.
                if self._live_key(part, label) != key:
                    continue
                live = {}
            self._hits += 1
            self._histogram[SimilarityHistogram.bin_of(similarity)] += 1
            others = self._others(part, found, key, live)
            equivalent = verdict is not None and verdict.equivalent
            return SemanticMatch(key, similarity, cached_text, partition, others, equivalent)
        if tried:
            self._rejected += 1
        else:
            self._below += 1
        return None

    def _candidates(
        self,
        part: _Partition,
        found: list[tuple[int, float]],
        minimum: float,
        live: dict[int, str | None],
    ) -> list[tuple[int, str, float, str]]:
        """The first :attr:`candidates` live entries of ``found`` at ``minimum`` or above, as
        (label, key, similarity, text); each label's live key is noted in ``live``."""
        candidates: list[tuple[int, str, float, str]] = []
        for label, similarity in found:
            if similarity < minimum or len(candidates) >= self.candidates:
                break
            key = live[label] = self._live_key(part, label)
            if key is not None:
                candidates.append((label, key, similarity, self._texts[key]))
        return candidates

    def _others(
        self,
        part: _Partition,
        found: list[tuple[int, float]],
        key: str,
        live: dict[int, str | None],
    ) -> tuple[tuple[str, float], ...]:
        """The live entries of ``found`` other than ``key``, most similar first (``live``: the
        live keys of labels already read)."""
        others = []
        for label, similarity in found:
            other = live[label] if label in live else self._live_key(part, label)
            if other is not None and other != key:
                others.append((other, similarity))
        others.sort(key=lambda pair: -pair[1])
        return tuple(others)

    async def _search(
        self, index: PartitionIndex, vector: Vectors, k: int
    ) -> list[tuple[int, float]]:
        self._searching += 1
        try:
            found: list[tuple[int, float]] | None = None
            if index.runs_inline():
                found = index.search(vector, k)  # a few rows: faster than any hop to a thread
            elif (
                self._searching == 1
                and k <= INLINE_SEARCH_K
                and index.search_seconds <= INLINE_SEARCH_SECONDS
            ):
                # Alone, and known to be quick: the hop to a thread and back (85-200 µs here,
                # more on a busy machine) would cost as much as the search. A search while
                # another is under way (in place until its checkpoint below, or in a thread)
                # goes to the threads, which batch concurrent ones; so does one while a write
                # holds the index, one of a partition not yet timed, and one asking for many
                # neighbours (past removals the actor has not applied yet).
                found = index.search_unless_busy(vector, k)
            if found is None:
                return await self._searcher.search(index, vector, k)
            # Searched in place: still yield to the loop once, as any await of ours does. A
            # task looking up one text after another would otherwise never let the loop run
            # (four such tasks held it for 330 ms at 100,000 entries), nor be cancelled.
            await anyio.lowlevel.checkpoint()
            return found
        finally:
            self._searching -= 1

    def _live_key(self, part: _Partition, label: int) -> str | None:
        """The key that ``label`` of ``part`` stands for, if that key is live under it."""
        key = part.keys.get(label)
        if key is None or self._labels.get(key) != label:
            return None
        return key

    def _ranked(
        self, query: str, candidates: list[tuple[int, str, float, str]]
    ) -> list[tuple[int, str, float, str]]:
        """``candidates`` in the order the verifier's :meth:`~LexicalVerifier.rank_score` gives.

        Stable: equal scores keep the nearest first. The first one that passes the checks wins,
        so the order decides which of several near-duplicate cached texts answers.
        """
        verifier = self.verifier
        assert verifier is not None
        return sorted(
            candidates,
            key=lambda candidate: -verifier.rank_score(query, candidate[3], candidate[2]),
        )

    async def _verified(self, query: str, cached: str, similarity: float) -> Verdict:
        verdict = ACCEPTED
        if self.verifier is not None:
            verdict = self.verifier.check(query, cached, similarity)
            if not verdict.accepted:
                assert verdict.reason is not None
                self._rejections[verdict.reason] += 1
                return verdict
        if self.user_verifier is not None and not await self.user_verifier(
            query, cached, similarity
        ):
            self._rejections["user"] += 1
            return Verdict(False, "user")
        return verdict

    def stats(self) -> SemanticStats:
        """What this cache did since it was made (an immutable snapshot)."""
        return SemanticStats(
            lookups=self._lookups,
            hits=self._hits,
            empty=self._empty,
            below_threshold=self._below,
            rejected=self._rejected,
            rejections=dict(self._rejections),
            hit_similarities=SimilarityHistogram(tuple(self._histogram)),
            adds=self._adds,
            removals=self._removals,
            entries=len(self._labels),
            partitions=sum(1 for part in self._partitions.values() if part.keys),
            pending_removals=sum(len(part.pending_deletes) for part in self._partitions.values()),
            embedded_texts=self.embedder.embedded,
            embedding_failures=self._embedding_failures,
            embedding_cache_entries=len(self.embedder),
        )

    def partition_size(self, partition: str) -> int:
        """Live keys in ``partition``."""
        part = self._partitions.get(partition)
        return 0 if part is None else len(part.keys)

    async def save(self, path: str | os.PathLike[str]) -> None:
        """Write every partition to the directory ``path`` (replaced as a whole, atomically)."""
        await self._require_mailbox().ask(_Save(Path(path)))

    async def load(self, path: str | os.PathLike[str]) -> None:
        """Replace this cache's contents with what :meth:`save` wrote to ``path``.

        The index must have been saved with the same embedding model (vectors of different
        models are not comparable).
        """
        await self._require_mailbox().ask(_Load(Path(path)))

    async def flush(self) -> None:
        """Return once every removal made before this call has been applied to the indices."""
        await self._require_mailbox().ask(_Flush())

    def _require_mailbox(self) -> Mailbox[_Message]:
        if self._mailbox is None:
            raise RuntimeClosedError("the semantic cache is not running (start run() first)")
        return self._mailbox

    def _request_pass(self) -> None:
        if self._mailbox is not None:
            self._mailbox.wake()

    # -- the actor's task ----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled: start it with ``await task_group.start(cache.run)``."""
        if self._running or self._closed:
            raise RuntimeClosedError("a SemanticCache runs once")
        self._running = True
        mailbox = self._mailbox = Mailbox("the semantic cache", _INBOX_SIZE)
        try:
            async with anyio.create_task_group() as group:
                await group.start(self._searcher.serve)
                task_status.started()
                await self._serve(mailbox)
        finally:
            self._running = False
            self._closed = True
            mailbox.close()

    async def _serve(self, mailbox: Mailbox[_Message]) -> None:
        while True:
            message: _Message | None = await mailbox.receive()
            inserts: list[_Insert] = []
            requests: list[_Save | _Flush] = []
            while True:  # everything queued now goes into one pass
                if isinstance(message, _Insert):
                    inserts.append(message)
                elif message is not None:
                    requests.append(message)
                message = mailbox.receive_nowait()
                if message is None:
                    break
            try:
                await self._apply(inserts)
                for request in requests:
                    await self._answer(request)
            except BaseException:
                # Cancelled mid-pass (the runtime is closing): whoever asked hears it now.
                for pending in (*inserts, *requests):
                    pending.fail(RuntimeClosedError("the semantic cache closed"))
                raise

    async def _apply(self, inserts: list[_Insert]) -> None:
        """Apply the queued deletions and ``inserts``, one worker-thread call per partition."""
        batches: dict[str, list[_Insert]] = {}
        for insert in inserts:
            if self._pending.get(insert.key) is insert.token:
                batches.setdefault(insert.partition, []).append(insert)
            else:
                insert.answer(None)  # removed or replaced since: nothing to do
        names = set(batches) | {n for n, p in self._partitions.items() if p.pending_deletes}
        try:
            for name in names:
                await self._apply_partition(name, batches.get(name, []))
        finally:
            for insert in inserts:
                insert.answer(None)  # a no-op for those that failed

    async def _apply_partition(self, name: str, inserts: list[_Insert]) -> None:
        part = self._partitions.get(name)
        if part is None:
            dimension = len(inserts[0].vector)
            part = self._partitions[name] = _Partition(PartitionIndex(dimension, self.hnsw))
        deletes, part.pending_deletes = part.pending_deletes, []
        # In slices, each its own worker-thread call: a search waits while a write holds the
        # index, and one insert into a graph of 100,000 takes 1-2 ms, so a whole pass (64 adds)
        # would keep lookups waiting ~100 ms; between two slices the waiting searches get in.
        # Shielded as a whole: a cancellation must not leave the index changed and the maps not.
        with anyio.CancelScope(shield=True):
            for start in range(0, max(len(inserts), 1), _APPLY_SLICE):
                await self._apply_slice(
                    name, part, deletes if start == 0 else [], inserts[start : start + _APPLY_SLICE]
                )
        if part.pending_deletes:
            self._request_pass()

    async def _apply_slice(
        self, name: str, part: _Partition, deletes: list[int], inserts: list[_Insert]
    ) -> None:
        labels = list(range(self._next_label, self._next_label + len(inserts)))
        self._next_label += len(inserts)
        vectors = np.stack([insert.vector for insert in inserts]) if inserts else None
        try:
            if part.index.runs_inline(len(inserts)):
                part.index.apply(deletes, labels, vectors)  # a few rows: microseconds
            else:
                await anyio.to_thread.run_sync(
                    part.index.apply, deletes, labels, vectors, limiter=worker_limiter()
                )
        except Exception as error:  # a bad vector fails its add() calls, not the actor
            for insert in inserts:
                insert.fail(error)
                if self._pending.get(insert.key) is insert.token:
                    del self._pending[insert.key]
            return
        for insert, label in zip(inserts, labels, strict=True):
            if self._pending.get(insert.key) is insert.token:
                del self._pending[insert.key]
                self._labels[insert.key] = label
                self._partition_of[insert.key] = name
                self._texts[insert.key] = insert.text
                part.keys[label] = insert.key
                self._adds += 1
            else:
                part.pending_deletes.append(label)  # removed while it was being inserted

    async def _answer(self, request: _Save | _Flush) -> None:
        try:
            if isinstance(request, _Load):
                await self._load(request.path)
            elif isinstance(request, _Save):
                await self._save(request.path)
            else:
                await self._apply([])
        except Exception as error:  # reported to the caller, the actor goes on
            request.fail(error)
        else:
            request.answer(None)

    # -- persistence ---------------------------------------------------------------------------

    async def _save(self, path: Path) -> None:
        await self._apply([])  # no pending deletion is saved as live
        partitions = [
            (name, part.index, dict(part.keys))
            for name, part in self._partitions.items()
            if part.keys
        ]
        texts = self._texts
        manifest = {
            "format": SAVE_FORMAT,
            "embedder": self.embedder.name,
            "next_label": self._next_label,
            "partitions": [
                {
                    "name": name,
                    "directory": f"p{number}",
                    "keys": {str(label): key for label, key in keys.items()},
                    "texts": {key: texts[key] for key in keys.values()},
                }
                for number, (name, _, keys) in enumerate(partitions)
            ],
        }

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            try:
                for number, (_, index, _) in enumerate(partitions):
                    directory = staging / f"p{number}"
                    directory.mkdir()
                    index.save(directory)
                (staging / "manifest.json").write_text(json.dumps(manifest))
                old = path.with_name(f".{path.name}.old")
                if path.exists():
                    path.rename(old)
                staging.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(write, limiter=worker_limiter())

    async def _load(self, path: Path) -> None:
        hnsw = self.hnsw

        def read() -> tuple[dict[str, Any], dict[str, PartitionIndex]]:
            manifest_path = path / "manifest.json"
            if not manifest_path.is_file():
                raise InvalidArgumentError("path", str(path), "a directory written by save()")
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") not in _READABLE_FORMATS:
                raise InvalidArgumentError(
                    "path",
                    str(path),
                    "a semantic index of format "
                    + " or ".join(str(number) for number in _READABLE_FORMATS),
                )
            indices = {
                entry["name"]: PartitionIndex.load(path / entry["directory"], hnsw)
                for entry in manifest["partitions"]
            }
            return manifest, indices

        manifest, indices = await anyio.to_thread.run_sync(read, limiter=worker_limiter())
        if manifest["embedder"] != self.embedder.name:
            raise InvalidArgumentError(
                "path",
                str(path),
                f"an index saved with embedder {self.embedder.name!r} "
                f"(this one holds vectors of {manifest['embedder']!r})",
            )
        # Replace everything at once, on the loop's thread: lookups see the old or the new state.
        self._pending.clear()
        self._labels.clear()
        self._partition_of.clear()
        self._texts.clear()
        self._partitions = {}
        for entry in manifest["partitions"]:
            part = _Partition(indices[entry["name"]])
            for label_text, key in entry["keys"].items():
                label = int(label_text)
                part.keys[label] = key
                self._labels[key] = label
                self._partition_of[key] = entry["name"]
                self._texts[key] = entry["texts"][key]
            self._partitions[entry["name"]] = part
        self._next_label = max(self._next_label, int(manifest["next_label"]))
