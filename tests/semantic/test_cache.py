"""The semantic cache on the hashing embedder: partitions, removal, verification, persistence.

Every test runs on asyncio and on trio, with exact search (small partitions) and with hnswlib
(``exact_limit=4`` moves a partition to the graph after four entries).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
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


@pytest.fixture(params=["exact", "graph"])
def hnsw(request: pytest.FixtureRequest) -> HnswSettings:
    return HnswSettings() if request.param == "exact" else HnswSettings(exact_limit=4)


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


async def test_live_keys_add_nothing_to_garbage_collection(cache: SemanticCache) -> None:
    """Full collections pause the event loop: the per-key maps must stay untracked."""
    await fill(cache, "p")
    part = cache._partitions["p"]
    maps: list[object] = [cache._labels, cache._texts, cache._partition_of, part.keys]
    if part.index.uses_graph:
        maps.append(part.index._graph_labels)
    assert not any(gc.is_tracked(mapping) for mapping in maps)
