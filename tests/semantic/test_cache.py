"""The semantic cache on the hashing embedder: partitions, removal, verification, persistence.

Every test runs on asyncio and on trio, with exact search (small partitions), with hnswlib
(``exact_limit=4`` moves a partition to the graph after four entries) and with a graph of
projected vectors re-scored on the full ones.
"""

from __future__ import annotations

import gc
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import numpy as np
import pytest

from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.semantic import (
    HashingEmbedder,
    HnswSettings,
    LexicalVerifier,
    SemanticCache,
    SemanticMatch,
)
from rgruntime.semantic.embedder import Vectors

pytestmark = pytest.mark.anyio

FILLER = [f"unrelated question number {word} about topic {word}" for word in "abcdefghij"]


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the texts it embeds and able to pause."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.gate: anyio.Event | None = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        if self.gate is not None:
            await self.gate.wait()
        return await super().embed(texts)


@pytest.fixture(params=["exact", "graph", "projected"])
def hnsw(request: pytest.FixtureRequest) -> HnswSettings:
    if request.param == "exact":
        return HnswSettings()
    if request.param == "graph":
        return HnswSettings(exact_limit=4)
    # A graph of 2-dimensional projections from the 9th entry on (4 vectors per axis are needed
    # to fit them), every neighbour re-scored on the full vectors.
    return HnswSettings(exact_limit=8, graph_dimension=2, rerank=64)


@pytest.fixture
async def cache(hnsw: HnswSettings) -> AsyncIterator[SemanticCache]:
    semantic = SemanticCache(CountingEmbedder(), threshold=0.5, hnsw=hnsw)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        yield semantic
        group.cancel_scope.cancel()


async def fill(cache: SemanticCache, partition: str) -> None:
    for number, text in enumerate(FILLER):
        await cache.add(partition, f"{partition}-filler-{number}", text)


async def test_finds_a_similar_text_and_reports_its_similarity(cache: SemanticCache) -> None:
    await fill(cache, "p")
    await cache.add("p", "k", "What is the weather in Paris today?")
    match = await cache.lookup("p", "what is the weather in Paris today")
    assert isinstance(match, SemanticMatch)
    assert match.key == "k"
    assert match.text == "What is the weather in Paris today?"
    assert match.partition == "p"
    assert 0.5 <= match.similarity <= 1.0
    stats = cache.stats()
    assert stats.hits == 1
    assert stats.hit_similarities.total == 1


async def test_partitions_never_share_entries_even_for_identical_text(
    cache: SemanticCache,
) -> None:
    text = "What is our refund policy?"
    await fill(cache, "tenant-a")
    await cache.add("tenant-a", "a-key", text)
    assert await cache.lookup("tenant-b", text) is None
    assert await cache.lookup("tenant-a|model=gpt-4o", text) is None
    await fill(cache, "tenant-b")
    assert await cache.lookup("tenant-b", text, threshold=0.0, verify=False) is not None
    match = await cache.lookup("tenant-b", text, threshold=0.0, verify=False)
    assert match is not None
    assert match.key.startswith("tenant-b-")
    await cache.add("tenant-b", "b-key", text)
    for tenant, key in (("tenant-a", "a-key"), ("tenant-b", "b-key")):
        match = await cache.lookup(tenant, text)
        assert match is not None
        assert match.key == key
        assert match.similarity == pytest.approx(1.0, abs=1e-5)


async def test_a_removed_key_is_never_returned_even_before_the_actor_runs(
    cache: SemanticCache,
) -> None:
    await fill(cache, "p")
    await cache.add("p", "evicted", "How do I reset my password?")
    await cache.add("p", "expired", "How can I reset my password?")
    await cache.add("p", "invalidated", "How to reset my password")
    removed: set[str] = set()
    for key in ("evicted", "expired", "invalidated"):
        assert cache.remove(key)  # synchronous: no checkpoint between it and the lookup
        removed.add(key)
        for _ in range(3):
            match = await cache.lookup("p", "How do I reset my password?", threshold=0.0)
            assert match is not None
            assert match.key not in removed
        assert key not in cache
    await cache.flush()
    stats = cache.stats()
    assert stats.pending_removals == 0
    assert stats.entries == len(FILLER)
    assert not cache.remove("evicted")


async def test_remove_many_and_clear(cache: SemanticCache) -> None:
    await fill(cache, "p")
    assert cache.remove_many(["p-filler-0", "p-filler-1", "missing"]) == 2
    assert cache.partition_size("p") == len(FILLER) - 2
    assert cache.clear() == len(FILLER) - 2
    assert await cache.lookup("p", FILLER[3]) is None
    await cache.flush()
    assert cache.stats().entries == 0


async def test_removal_during_add_drops_the_add(cache: SemanticCache) -> None:
    embedder = cache.embedder.inner
    assert isinstance(embedder, CountingEmbedder)
    embedder.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(cache.add, "p", "k", "Is the museum open on Mondays?")
        await anyio.wait_all_tasks_blocked()
        assert cache.remove("k")  # while its text is being embedded
        embedder.gate.set()
    assert "k" not in cache
    embedder.gate = None
    assert await cache.lookup("p", "Is the museum open on Mondays?") is None


async def test_adding_a_key_again_replaces_its_text(cache: SemanticCache) -> None:
    await fill(cache, "p")
    await cache.add("p", "k", "How do I bake sourdough bread?")
    await cache.add("p", "k", "How do I brew green tea?")
    assert len(cache) == len(FILLER) + 1
    match = await cache.lookup("p", "How do I bake sourdough bread?", threshold=0.9)
    assert match is None
    match = await cache.lookup("p", "How do I brew green tea?")
    assert match is not None
    assert match.key == "k"
    await cache.add("p", "k", "How do I brew green tea?")  # same text: nothing to do
    await cache.flush()
    assert cache.stats().entries == len(FILLER) + 1


async def test_churn_leaves_no_orphan_vectors(cache: SemanticCache) -> None:
    await fill(cache, "p")
    for round_number in range(5):
        keys = [f"churn-{round_number}-{n}" for n in range(6)]
        for n, key in enumerate(keys):
            await cache.add("p", key, f"churn question {round_number} {n}")
        cache.remove_many(keys)
    await cache.flush()
    index = cache._partitions["p"].index
    assert len(index) == len(FILLER) == cache.partition_size("p")


async def test_verification_rejects_near_misses_and_counts_them(cache: SemanticCache) -> None:
    await fill(cache, "p")
    await cache.add("p", "paris", "What's the weather in Paris?")
    assert await cache.lookup("p", "What's the weather in London?") is None
    assert await cache.lookup("p", "What's the weather in London?", verify=False) is not None
    stats = cache.stats()
    assert stats.rejected == 1
    assert stats.rejections["entity"] >= 1
    assert stats.lookups == 2
    assert stats.hits == 1


async def test_the_next_candidate_is_tried_after_a_rejection(cache: SemanticCache) -> None:
    await fill(cache, "p")
    await cache.add("p", "two", "top 2 hiking trails near the lake shore")
    await cache.add("p", "three", "please, top 3 hiking trails near the lake shore")
    match = await cache.lookup("p", "top 3 hiking trails near the lake shore", threshold=0.3)
    assert match is not None
    assert match.key == "three"


async def test_user_verifier(hnsw: HnswSettings) -> None:
    seen: list[tuple[str, str, float]] = []

    async def verifier(query: str, cached: str, similarity: float) -> bool:
        seen.append((query, cached, similarity))
        await anyio.lowlevel.checkpoint()
        return "allowed" in cached

    semantic = SemanticCache(
        "hashing", threshold=0.3, verifier=None, user_verifier=verifier, hnsw=hnsw
    )
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await semantic.add("p", "a", "refund policy allowed")
        await semantic.add("p", "b", "refund policy denied here")
        match = await semantic.lookup("p", "refund policy denied here")
        assert match is not None
        assert match.key == "a"
        assert semantic.stats().rejections["user"] == 1
        assert seen[0][1] == "refund policy denied here"
        group.cancel_scope.cancel()


async def test_entries_removed_while_a_user_verifier_runs_are_never_returned(
    hnsw: HnswSettings,
) -> None:
    """A user verifier suspends the lookup: what it removes meanwhile is neither the match nor
    among the match's other candidates, and never sent to the verifier."""
    removals: dict[str, list[str]] = {}
    verified: list[str] = []

    async def verifier(query: str, cached: str, similarity: float) -> bool:
        verified.append(cached)
        await anyio.lowlevel.checkpoint()
        semantic.remove_many(removals.get(cached, []))
        return "accepted" in cached

    semantic = SemanticCache(
        "hashing", threshold=0.3, verifier=None, user_verifier=verifier, hnsw=hnsw
    )
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await fill(semantic, "p")
        await semantic.add("p", "first", "refund policy for shoes rejected")
        await semantic.add("p", "second", "refund policy for shoes accepted")
        await semantic.add("p", "third", "refund policy for shoes accepted too")
        asked = "refund policy for shoes rejected"
        # Verifying "first" removes "second": "third" answers, and "second" is not among the
        # others.
        removals["refund policy for shoes rejected"] = ["second"]
        match = await semantic.lookup("p", asked)
        assert match is not None
        assert match.key == "third"
        assert "second" not in dict(match.others)
        assert "first" in dict(match.others)
        assert "refund policy for shoes accepted" not in verified
        # Verifying "third" removes "third" itself and "first": no match at all.
        removals["refund policy for shoes accepted too"] = ["third", "first"]
        assert await semantic.lookup("p", asked) is None
        group.cancel_scope.cancel()


class FailingEmbedder(HashingEmbedder):
    """The hashing embedder, failing while ``down`` (an embedding service that is away)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self.down:
            raise ConnectionError("embedding service unreachable")
        return await super().embed(texts)


async def test_an_embedder_failure_is_named_counted_and_stores_nothing(
    hnsw: HnswSettings,
) -> None:
    from rgruntime.semantic import EmbeddingFailedError

    embedder = FailingEmbedder()
    semantic = SemanticCache(embedder, threshold=0.5, hnsw=hnsw)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await fill(semantic, "p")
        embedder.down = True
        with pytest.raises(EmbeddingFailedError, match="embedding service unreachable") as raised:
            await semantic.lookup("p", "a text never embedded")
        assert isinstance(raised.value.__cause__, ConnectionError)
        assert raised.value.embedder == embedder.name
        with pytest.raises(EmbeddingFailedError):
            await semantic.add("p", "new", "another text never embedded")
        stats = semantic.stats()
        assert (stats.embedding_failures, stats.entries) == (2, len(FILLER))
        assert "new" not in semantic  # nothing half-added
        embedder.down = False
        await semantic.add("p", "new", "another text never embedded")
        match = await semantic.lookup("p", "another text never embedded")
        assert match is not None
        assert match.key == "new"
        group.cancel_scope.cancel()


async def test_a_cancelled_embedding_is_no_failure(cache: SemanticCache) -> None:
    embedder = cache.embedder.inner
    assert isinstance(embedder, CountingEmbedder)
    await fill(cache, "p")
    embedder.gate = anyio.Event()  # never set: the embedding waits until cancelled
    with anyio.move_on_after(0.05):
        await cache.lookup("p", "a text never embedded")
    with anyio.move_on_after(0.05):
        await cache.add("p", "k", "another text never embedded")
    assert cache.stats().embedding_failures == 0
    assert "k" not in cache


async def test_embeddings_are_cached(cache: SemanticCache) -> None:
    embedder = cache.embedder.inner
    assert isinstance(embedder, CountingEmbedder)
    await cache.add("p", "k", "How do I centre a div?")
    await cache.lookup("p", "How do I centre a div?")
    await cache.lookup("p", "How do I centre a div?")
    await cache.add("q", "k2", "How do I centre a div?")
    assert sum(call.count("How do I centre a div?") for call in embedder.calls) == 1
    assert cache.stats().embedded_texts == 1


async def test_concurrent_callers_share_one_embedding(cache: SemanticCache) -> None:
    embedder = cache.embedder.inner
    assert isinstance(embedder, CountingEmbedder)
    embedder.gate = anyio.Event()
    vectors: list[Vectors] = []

    async def embed() -> None:
        vectors.append(await cache.embedder.embed(["same text", "same text"]))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(embed)
        await anyio.wait_all_tasks_blocked()
        embedder.gate.set()
    assert embedder.calls == [["same text"]]
    assert all(np.array_equal(v, vectors[0]) for v in vectors)


async def test_save_and_load(cache: SemanticCache, hnsw: HnswSettings, tmp_path: Path) -> None:
    await fill(cache, "p")
    await cache.add("p", "k", "How do I renew my passport?")
    await cache.add("q", "other", "How do I renew my passport?")
    cache.remove("p-filler-2")
    await cache.save(tmp_path / "index")
    await cache.save(tmp_path / "index")  # replaces the previous save
    restored = SemanticCache("hashing", threshold=0.5, hnsw=hnsw)
    async with anyio.create_task_group() as group:
        await group.start(restored.run)
        await restored.load(tmp_path / "index")
        assert len(restored) == len(FILLER) + 1
        assert "p-filler-2" not in restored
        match = await restored.lookup("p", "How do I renew my passport?")
        assert match is not None
        assert match.key == "k"
        match = await restored.lookup("q", "How do I renew my passport?")
        assert match is not None
        assert match.key == "other"
        await restored.add("p", "new", "Where is the nearest pharmacy?")  # labels stay unique
        match = await restored.lookup("p", "Where is the nearest pharmacy?")
        assert match is not None
        assert match.key == "new"
        group.cancel_scope.cancel()


async def test_load_refuses_another_model(cache: SemanticCache, tmp_path: Path) -> None:
    await cache.add("p", "k", "text")
    await cache.save(tmp_path / "index")
    other = SemanticCache(HashingEmbedder(dimension=64))
    async with anyio.create_task_group() as group:
        await group.start(other.run)
        with pytest.raises(InvalidArgumentError, match="hashing-256"):
            await other.load(tmp_path / "index")
        with pytest.raises(InvalidArgumentError, match="save"):
            await other.load(tmp_path / "missing")
        group.cancel_scope.cancel()


async def test_load_reads_earlier_formats_and_refuses_an_unknown_one(
    cache: SemanticCache, tmp_path: Path
) -> None:
    """Format 2 added projected graphs, 3 graphs labelled by rows; a partition written before 3
    is read too (``test_projected_index.py``); the manifest's number gates the reader."""
    import json

    await fill(cache, "p")
    await cache.save(tmp_path / "index")
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["format"] == 3
    for written, loads in ((1, True), (2, True), (4, False)):
        manifest_path.write_text(json.dumps({**manifest, "format": written}))
        restored = SemanticCache("hashing", threshold=0.5)
        async with anyio.create_task_group() as group:
            await group.start(restored.run)
            if loads:
                await restored.load(tmp_path / "index")
                assert len(restored) == len(FILLER)
            else:
                with pytest.raises(InvalidArgumentError, match="format 1 or 2 or 3"):
                    await restored.load(tmp_path / "index")
            group.cancel_scope.cancel()


async def test_arguments_are_validated(cache: SemanticCache) -> None:
    with pytest.raises(InvalidArgumentError, match="threshold"):
        await cache.lookup("p", "text", threshold=1.5)
    with pytest.raises(InvalidArgumentError, match="text"):
        await cache.add("p", "k", 42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="threshold"):
        SemanticCache("hashing", threshold=-0.1)
    with pytest.raises(ConfigError, match="embedding_model"):
        SemanticCache("no-such-model")
    with pytest.raises(InvalidArgumentError, match="candidates"):
        SemanticCache("hashing", candidates=0)


async def test_stats_histogram_and_rates(cache: SemanticCache) -> None:
    await cache.add("p", "k", "How do I cancel my subscription?")
    await cache.lookup("p", "How do I cancel my subscription?")
    await cache.lookup("empty-partition", "anything")
    stats = cache.stats()
    assert stats.lookups == 2
    assert stats.empty == 1
    assert stats.hit_rate == 50.0
    assert stats.hit_similarities.nonzero() == {"0.99": 1}
    assert stats.hit_similarities.quantile(0.5) == 0.99
    record = stats.as_dict()
    assert record["hit_similarities"] == {"0.99": 1}
    assert record["misses"] == 1


async def test_add_needs_the_actor() -> None:
    semantic = SemanticCache("hashing")
    with pytest.raises(RuntimeClosedError):
        await semantic.add("p", "k", "text")
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        group.cancel_scope.cancel()
    with pytest.raises(RuntimeClosedError):
        await semantic.add("p", "k", "text")
    assert semantic.remove("k") is False  # removal stays safe after the actor stopped


async def test_lexical_verifier_can_be_turned_off(hnsw: HnswSettings) -> None:
    semantic = SemanticCache("hashing", threshold=0.5, verifier=None, hnsw=hnsw)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await semantic.add("p", "paris", "What's the weather in Paris?")
        assert await semantic.lookup("p", "What's the weather in London?") is not None
        group.cancel_scope.cancel()
    assert LexicalVerifier().check("a", "a", 1.0).accepted


async def test_the_projected_settings_reach_a_projected_graph() -> None:
    settings = HnswSettings(exact_limit=8, graph_dimension=2, rerank=64)
    semantic = SemanticCache(CountingEmbedder(), threshold=0.5, hnsw=settings)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await fill(semantic, "p")
        assert semantic._partitions["p"].index.graph_dimension == 2
        for number, text in enumerate(FILLER):
            match = await semantic.lookup("p", text)
            assert match is not None
            assert match.key == f"p-filler-{number}"
            assert match.similarity == pytest.approx(1.0, abs=1e-5)
        group.cancel_scope.cancel()


async def test_live_keys_add_nothing_to_garbage_collection(cache: SemanticCache) -> None:
    """Full collections pause the event loop: the per-key maps must stay untracked."""
    await fill(cache, "p")
    part = cache._partitions["p"]
    maps = [cache._labels, cache._texts, cache._partition_of, part.keys]
    maps.append(part.index._rows._label_rows)
    # Each map is one tracked object holding plain dicts that the collector skips.
    shards = [shard for mapping in maps for shard in mapping._shards]
    assert shards
    assert not any(gc.is_tracked(shard) for shard in shards)


# -- the search threads and the sliced writes ----------------------------------------------------


async def test_concurrent_lookups_answer_as_sequential_ones(cache: SemanticCache) -> None:
    """Lookups queued together are searched in one batch; each still gets its own answer."""
    await fill(cache, "p")
    await fill(cache, "q")
    queries = [(partition, text) for partition in ("p", "q") for text in FILLER]
    alone = [await cache.lookup(partition, text) for partition, text in queries]
    together: list[SemanticMatch | None] = [None] * len(queries)

    async def look(number: int) -> None:
        together[number] = await cache.lookup(*queries[number])

    async with anyio.create_task_group() as group:
        for number in range(len(queries)):
            group.start_soon(look, number)
    assert together == alone
    assert [match.key if match else None for match in together] == [
        f"{partition}-filler-{number}" for partition in ("p", "q") for number in range(len(FILLER))
    ]


async def test_a_batch_of_searches_gets_each_its_own_k_and_partition() -> None:
    from rgruntime.semantic.index import PartitionIndex
    from rgruntime.semantic.searcher import Searcher, _Search

    embedder = HashingEmbedder()
    vectors = await embedder.embed(FILLER)
    small = PartitionIndex(embedder.dimension, HnswSettings())
    graph = PartitionIndex(embedder.dimension, HnswSettings(exact_limit=4))
    small.apply([], list(range(5)), vectors[:5])
    graph.apply([], list(range(10)), vectors)
    assert graph.uses_graph
    assert not small.uses_graph
    requests = [
        _Search(small, vectors[0], 1),
        _Search(graph, vectors[1], 3),
        _Search(small, vectors[2], 4),
        _Search(graph, vectors[3], 1),
    ]
    searcher = Searcher(1)
    searcher._schedule = lambda function, *args: function(*args)  # this test runs on the loop
    searcher._answer(requests)
    for request in requests:
        assert request.settled
        found = await request.result()
        assert found == request.index.search(request.vector, request.k)
        assert found is not None
        assert len(found) == request.k


async def test_lookups_still_search_after_the_actor_stopped(hnsw: HnswSettings) -> None:
    semantic = SemanticCache("hashing", threshold=0.5, hnsw=hnsw)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await fill(semantic, "p")
        group.cancel_scope.cancel()
    match = await semantic.lookup("p", FILLER[3])
    assert match is not None
    assert match.key == "p-filler-3"


async def test_a_cancelled_lookup_does_not_wait_for_its_search_thread(
    cache: SemanticCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    await fill(cache, "p")
    index = cache._partitions["p"].index
    entered, release, finished = anyio.Event(), threading.Event(), threading.Event()
    search = index.search

    def blocked_search(vector: Vectors, k: int) -> list[tuple[int, float]]:
        anyio.from_thread.run_sync(entered.set)
        release.wait(10)
        finished.set()
        return search(vector, k)

    monkeypatch.setattr(index, "search", blocked_search)
    monkeypatch.setattr(index, "runs_inline", lambda extra=0: False)  # small: a thread anyway
    monkeypatch.setattr(index, "search_unless_busy", lambda vector, k: None)  # as if written
    async with anyio.create_task_group() as group:
        group.start_soon(cache.lookup, "p", FILLER[0])
        await entered.wait()
        group.cancel_scope.cancel()
    assert not finished.is_set()  # the lookup ended while its thread was still searching
    release.set()
    monkeypatch.undo()
    match = await cache.lookup("p", FILLER[0])  # the threads serve on
    assert match is not None
    assert match.key == "p-filler-0"


async def test_a_search_queued_when_no_thread_will_take_it_falls_back() -> None:
    from rgruntime.semantic.index import PartitionIndex
    from rgruntime.semantic.searcher import Searcher

    embedder = HashingEmbedder()
    vectors = await embedder.embed(FILLER)
    index = PartitionIndex(embedder.dimension, HnswSettings())
    index.apply([], list(range(len(FILLER))), vectors)
    searcher = Searcher(0)  # as if its threads were cancelled before they started
    found: list[list[tuple[int, float]]] = []

    async def search() -> None:
        found.append(await searcher.search(index, vectors[2], 2))

    with anyio.fail_after(10):  # a search nobody answers would hang the test
        async with anyio.create_task_group() as outer, anyio.create_task_group() as serving:
            await serving.start(searcher.serve)
            outer.start_soon(search)
            while searcher._queue.qsize() == 0:
                await anyio.lowlevel.checkpoint()
            serving.cancel_scope.cancel()
    assert found == [index.search(vectors[2], 2)]


async def test_a_pass_of_many_adds_is_written_in_slices(
    hnsw: HnswSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches wait while a write holds the index: the actor writes a few inserts per call."""
    from rgruntime.semantic import cache as cache_module
    from rgruntime.semantic.index import PartitionIndex

    written: list[int] = []
    apply = PartitionIndex.apply

    def counting_apply(
        self: PartitionIndex, delete: list[int], labels: list[int], vectors: Vectors | None
    ) -> None:
        written.append(len(labels))
        apply(self, delete, labels, vectors)

    monkeypatch.setattr(PartitionIndex, "apply", counting_apply)
    embedder = CountingEmbedder()
    embedder.gate = anyio.Event()
    semantic = SemanticCache(embedder, threshold=0.5, hnsw=hnsw)
    texts = [f"{text} number {copy}" for copy in range(2) for text in FILLER]
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        async with anyio.create_task_group() as adders:
            for number, text in enumerate(texts):
                adders.start_soon(semantic.add, "p", f"k{number}", text)
            while len(embedder.calls) < len(texts):
                await anyio.lowlevel.checkpoint()
            embedder.gate.set()  # every add posts its insert at once: one pass of 20
        assert written == [cache_module._APPLY_SLICE] * 2 + [len(texts) % cache_module._APPLY_SLICE]
        for number, text in enumerate(texts):
            match = await semantic.lookup("p", text)
            assert match is not None
            assert match.key == f"k{number}"
        group.cancel_scope.cancel()


async def test_small_exact_partitions_are_searched_and_written_without_a_thread(
    cache: SemanticCache, hnsw: HnswSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a worker thread was used")

    await fill(cache, "p")
    index = cache._partitions["p"].index
    small = not index.uses_graph
    assert index.runs_inline() == small
    if small:
        monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
        monkeypatch.setattr(cache._searcher, "search", no_thread)
        await cache.add("p", "extra", "one more question about the weather")
        match = await cache.lookup("p", FILLER[2])
        assert match is not None
        assert match.key == "p-filler-2"
        assert "extra" in cache
    else:  # a graph: alone, once timed, searched on the loop's thread too (the hop costs more)
        assert index.search_seconds == math.inf
        assert await cache.lookup("p", FILLER[1]) is not None  # not timed yet: by a thread
        assert index.search_seconds < 0.0005
        monkeypatch.setattr(cache._searcher, "search", no_thread)
        match = await cache.lookup("p", FILLER[2])
        assert match is not None
        assert match.key == "p-filler-2"


async def test_a_lookup_searched_in_place_still_lets_the_loop_run(cache: SemanticCache) -> None:
    await fill(cache, "p")
    for text in FILLER:  # embedded once: the lookups below suspend nowhere else
        await cache.lookup("p", text)
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(other_task)
        await anyio.lowlevel.checkpoint()
        before = turns
        for text in FILLER * 2:
            assert await cache.lookup("p", text) is not None
        ran = turns - before
        done = True
    # Each lookup yielded at least once (exact and graph partitions alike): the other task ran
    # about once per lookup (a scheduler may run the two in either order: half is the floor);
    # a lookup that never yields lets it run not at all.
    assert ran >= len(FILLER)


@pytest.mark.parametrize(
    "graph",
    [HnswSettings(exact_limit=4), HnswSettings(exact_limit=8, graph_dimension=2, rerank=64)],
    ids=["full", "projected"],
)
async def test_a_graph_is_searched_by_the_threads_when_written_slow_or_not_alone(
    graph: HnswSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from rgruntime.semantic import cache as cache_module
    from rgruntime.semantic.index import PartitionIndex

    semantic = SemanticCache(CountingEmbedder(), threshold=0.5, hnsw=graph)
    async with anyio.create_task_group() as group:
        await group.start(semantic.run)
        await fill(semantic, "p")
        index = semantic._partitions["p"].index
        assert index.uses_graph
        assert await semantic.lookup("p", FILLER[0]) is not None  # times its searches
        threads: list[object] = []
        search = semantic._searcher.search

        async def counted(*args: Any, **kwargs: Any) -> Any:
            threads.append(args)
            return await search(*args, **kwargs)

        monkeypatch.setattr(semantic._searcher, "search", counted)
        # A write holds the index: the loop's thread does not wait for it, a thread does.
        held, release = threading.Event(), threading.Event()

        def write() -> None:
            with index.lock:
                held.set()
                release.wait(10)

        async with anyio.create_task_group() as writing:
            writing.start_soon(anyio.to_thread.run_sync, write)
            await anyio.to_thread.run_sync(held.wait, 10)
            async with anyio.create_task_group() as lookups:
                lookups.start_soon(semantic.lookup, "p", FILLER[2])
                while not threads:
                    await anyio.lowlevel.checkpoint()
                # Another lookup while the first waits for a thread: not alone, to the threads.
                lookups.start_soon(semantic.lookup, "p", FILLER[3])
                while len(threads) < 2:
                    await anyio.lowlevel.checkpoint()
                release.set()
        assert len(threads) == 2
        # A burst: the first is searched in place, those that come while it yields go to the
        # threads (which batch them).
        async with anyio.create_task_group() as burst:
            for text in FILLER[:8]:
                burst.start_soon(semantic.lookup, "p", text)
        assert len(threads) >= 2 + 7
        # A search asking for many neighbours (removals not applied yet) goes to the threads.
        before = len(threads)
        monkeypatch.setattr(semantic, "candidates", cache_module.INLINE_SEARCH_K + 1)
        assert await semantic.lookup("p", FILLER[5]) is not None
        assert len(threads) == before + 1
        monkeypatch.setattr(semantic, "candidates", 4)
        # Searches that have lately been slow go to the threads too.
        monkeypatch.setattr(PartitionIndex, "search_seconds", property(lambda self: 0.01))
        match = await semantic.lookup("p", FILLER[4])
        assert match is not None
        assert match.key == "p-filler-4"
        assert len(threads) == before + 2
        group.cancel_scope.cancel()


async def test_a_match_names_its_runner_up_and_whether_the_rules_found_it_equivalent(
    cache: SemanticCache,
) -> None:
    await fill(cache, "p")
    await cache.add("p", "paris", "What is the weather in Paris?")
    await cache.add("p", "paris-2", "What is the weather in Paris like?")
    match = await cache.lookup("p", "What is the weather in Paris now?", 0.1)
    assert match is not None
    assert match.equivalent  # differs from its match only in "now" (and the frame)
    assert match.runner_up is not None
    other, similarity = match.runner_up
    assert other in ("paris", "paris-2")
    assert other != match.key
    assert similarity <= match.similarity
    alone = await cache.lookup("q", "anything", 0.1)
    assert alone is None
    await cache.add("q", "only", "What is the weather in Paris?")
    single = await cache.lookup("q", "What is the weather in Paris?", 0.1)
    assert single is not None
    assert (single.runner_up, single.equivalent) == (None, False)  # identical: a plain accept
