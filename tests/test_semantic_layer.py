"""A layer's semantic index never returns an entry the layer no longer holds, nor another
partition's entry.

The hashing embedder (no model) with the lexical check off: these tests are about the binding of
the index to the layer (removal listener, read path, partitions), not about similarity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

import rgruntime
from rgruntime import ConfigError, LayerNotFoundError, Runtime, RuntimeClosedError
from rgruntime.semantic import HashingEmbedder, semantic_index
from rgruntime.semantic.layer_index import LayerSemanticIndex

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

PARIS = "what is the weather like in paris today"
PARIS_AGAIN = "what is the weather like in paris today please"
OTHERS = {
    "k-cake": "how do I bake a chocolate cake at home",
    "k-train": "when does the next train to berlin leave",
}


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    # A layer without a default TTL: under virtual time, a pending deadline would let the clock
    # jump while a lookup waits for its worker thread.
    config = {"layers": {"answers": {"ttl": None, "max_entries": 10}}}
    async with rgruntime.open_runtime(config) as runtime:
        yield runtime


@pytest.fixture
async def index(runtime: Runtime) -> LayerSemanticIndex:
    return await semantic_index(
        runtime, "answers", embedder=HashingEmbedder(), threshold=0.8, verifier=None
    )


async def store(index: LayerSemanticIndex, key: str, text: str, partition: str = "p") -> None:
    await index.layer.set(key, f"answer to {text}")
    await index.add(partition, key, text)


async def filled(index: LayerSemanticIndex) -> None:
    await store(index, "k-paris", PARIS)
    for key, text in OTHERS.items():
        await store(index, key, text)


async def test_a_similar_text_finds_the_entry_through_the_layer(index: LayerSemanticIndex) -> None:
    await filled(index)
    hit = await index.lookup("p", PARIS_AGAIN)
    assert hit is not None
    assert (hit.key, hit.value, hit.text) == ("k-paris", f"answer to {PARIS}", PARIS)
    assert 0.8 <= hit.similarity <= 1
    assert index.layer.stats().hits == 1  # read through the layer's read path
    assert index.stats().hit_similarities.total == 1


@pytest.mark.parametrize("how", ["delete", "key", "pattern", "tag", "clear"])
async def test_an_invalidated_or_deleted_entry_is_never_returned(
    index: LayerSemanticIndex, how: str
) -> None:
    await filled(index)
    await index.layer.set("k-paris", "tagged", tags=["weather:paris"])  # replaced: stays indexed
    assert await index.lookup("p", PARIS_AGAIN) is not None
    layer = index.layer
    if how == "delete":
        assert await layer.delete("k-paris")
    elif how == "key":
        assert await layer.invalidate(key="k-paris") == 1
    elif how == "pattern":
        assert await layer.invalidate(pattern="k-par*") == 1
    elif how == "tag":
        assert await layer.invalidate(tags=["weather"]) == 1
    else:
        assert await layer.clear() == 3
    # Synchronously gone from the index: no orphan vector, no hit, not even before a pass.
    assert "k-paris" not in index.cache
    assert await index.lookup("p", PARIS_AGAIN) is None
    assert await index.lookup("p", PARIS) is None


async def test_an_evicted_entry_is_never_returned(runtime: Runtime) -> None:
    await runtime.add_layer("small", ttl=None, max_entries=2)
    index = await semantic_index(runtime, "small", embedder=HashingEmbedder(), verifier=None)
    await store(index, "k-paris", PARIS)
    await store(index, "k-cake", OTHERS["k-cake"])
    await store(index, "k-train", OTHERS["k-train"])
    await index.layer.cleanup()  # over max_entries: one of them goes
    gone = [key for key in ("k-paris", "k-cake", "k-train") if key not in index.layer]
    assert len(gone) == 1
    assert gone[0] not in index.cache
    assert len(index.cache) == 2
    text = PARIS if gone[0] == "k-paris" else OTHERS[gone[0]]
    hit = await index.lookup("p", text, threshold=0.0)
    assert hit is None or hit.key != gone[0]


async def test_an_expired_entry_is_never_returned(index: LayerSemanticIndex) -> None:
    await filled(index)
    assert await index.lookup("p", PARIS_AGAIN) is not None
    await index.layer.set("k-paris", "short-lived", ttl=10)
    await anyio.sleep(11)
    assert await index.lookup("p", PARIS_AGAIN) is None
    await index.layer.cleanup()
    assert "k-paris" not in index.cache
    assert {"k-cake", "k-train"} <= set(index.cache._labels)


async def test_partitions_never_see_each_other_even_for_identical_text(
    index: LayerSemanticIndex,
) -> None:
    tenant_a, tenant_b = "tenant-a|agent|gpt-4o", "tenant-b|agent|gpt-4o"
    model_b = "tenant-a|agent|claude"
    await store(index, "a-paris", PARIS, partition=tenant_a)
    assert await index.lookup(tenant_b, PARIS) is None
    assert await index.lookup(model_b, PARIS) is None
    await store(index, "b-paris", PARIS, partition=tenant_b)
    hit_a = await index.lookup(tenant_a, PARIS)
    hit_b = await index.lookup(tenant_b, PARIS)
    assert hit_a is not None
    assert hit_a.key == "a-paris"
    assert hit_b is not None
    assert hit_b.key == "b-paris"
    await index.layer.delete("a-paris")
    assert await index.lookup(tenant_a, PARIS) is None
    still_b = await index.lookup(tenant_b, PARIS)
    assert still_b is not None
    assert still_b.key == "b-paris"


async def test_an_add_for_an_entry_already_gone_is_undone(index: LayerSemanticIndex) -> None:
    await index.add("p", "never-stored", PARIS)
    assert "never-stored" not in index.cache
    assert await index.lookup("p", PARIS) is None


async def test_one_index_per_layer_and_embedder(runtime: Runtime) -> None:
    first = await semantic_index(runtime, "answers", embedder="hashing", verifier=None)
    assert await semantic_index(runtime, "answers", embedder="hashing") is first
    assert await semantic_index(runtime, "answers", embedder="hashing", verifier=None) is first
    with pytest.raises(ConfigError, match="semantic_index options") as error:
        await semantic_index(runtime, "answers", embedder="hashing", threshold=0.5)
    assert "threshold" in str(error.value)
    other_layer = await semantic_index(runtime, "tool", embedder="hashing")
    assert other_layer is not first
    assert other_layer.layer.name == "tool"
    with pytest.raises(LayerNotFoundError):
        await semantic_index(runtime, "nope", embedder="hashing")


async def test_bad_thresholds_are_refused_and_nothing_is_lost(index: LayerSemanticIndex) -> None:
    await filled(index)
    for bad in (1.5, -0.1, "high", True):
        with pytest.raises(rgruntime.InvalidArgumentError, match="threshold") as error:
            await index.lookup("p", PARIS, threshold=bad)  # type: ignore[arg-type]
        assert repr(bad) in str(error.value)
        assert "between 0 and 1" in str(error.value)
    assert len(index.cache) == 3
    assert await index.lookup("p", PARIS_AGAIN) is not None


async def test_the_index_stops_with_the_runtime() -> None:
    async with rgruntime.open_runtime() as runtime:
        index = await semantic_index(runtime, "tool", embedder="hashing")
        await runtime.layer("tool").set("k", 1)
        await index.add("p", "k", PARIS)
    with pytest.raises(RuntimeClosedError):
        await index.add("p", "k2", PARIS)
    with pytest.raises(RuntimeClosedError):
        await semantic_index(runtime, "tool", embedder="hashing")


# -- the runner-up of a hit: reported only when that entry holds another answer ------------------
# (two cached phrasings of one question are no ambiguity: the error bound would verify them
# forever); a looser threshold, so that several entries are found.

RUNNER_PARIS = "what is the weather like in paris"
RUNNER_PARIS_LIKE = "what is the weather like in paris please"
RUNNER_ASKED = "what is the weather like in paris now"


@pytest.fixture
async def loose_index(runtime: Runtime) -> LayerSemanticIndex:
    return await semantic_index(
        runtime, "answers", embedder=HashingEmbedder(), threshold=0.3, verifier=None
    )


async def _store_answer(index: LayerSemanticIndex, key: str, text: str, answer: str) -> None:
    await index.layer.set(key, answer)
    await index.add("p", key, text)


async def test_a_runner_up_with_another_answer_is_reported(loose_index: LayerSemanticIndex) -> None:
    await _store_answer(loose_index, "paris", RUNNER_PARIS, "Sunny")
    await _store_answer(loose_index, "paris-2", RUNNER_PARIS_LIKE, "Rain all day")
    hit = await loose_index.lookup("p", RUNNER_ASKED)
    assert hit is not None
    assert hit.runner_up is not None
    assert hit.runner_up <= hit.similarity


async def test_a_runner_up_with_the_same_answer_is_no_ambiguity(
    loose_index: LayerSemanticIndex,
) -> None:
    await _store_answer(loose_index, "paris", RUNNER_PARIS, "Sunny, 21 degrees.")
    # The same answer, once normalized.
    await _store_answer(loose_index, "paris-2", RUNNER_PARIS_LIKE, "sunny 21 degrees")
    hit = await loose_index.lookup("p", RUNNER_ASKED)
    assert hit is not None
    assert hit.runner_up is None


async def test_a_runner_up_that_left_the_layer_is_no_ambiguity(
    loose_index: LayerSemanticIndex,
) -> None:
    await _store_answer(loose_index, "paris", RUNNER_PARIS, "Sunny")
    await loose_index.layer.set("paris-2", "Rain")
    await loose_index.add("p", "paris-2", RUNNER_PARIS_LIKE)
    hit = await loose_index.lookup("p", RUNNER_ASKED)
    assert hit is not None
    assert hit.runner_up is not None
    other = "paris" if hit.key == "paris-2" else "paris-2"
    await loose_index.layer.delete(other)
    again = await loose_index.lookup("p", RUNNER_ASKED)
    assert again is not None
    assert again.runner_up is None


async def test_the_runner_up_is_the_closest_entry_with_another_answer(
    loose_index: LayerSemanticIndex,
) -> None:
    # A second phrasing with the match's own answer, closer than anything else, must not hide
    # a third entry that holds another answer.
    await _store_answer(loose_index, "a", RUNNER_PARIS, "Sunny")
    await _store_answer(loose_index, "b", f"{RUNNER_ASKED} please", "Sunny")
    await _store_answer(loose_index, "c", f"{RUNNER_ASKED} thanks", "Rain all day")
    match = await loose_index.cache.lookup("p", RUNNER_ASKED, verify=False)
    hit = await loose_index.lookup("p", RUNNER_ASKED)
    assert match is not None
    assert hit is not None
    similarities = dict(match.others)
    assert match.others[0][0] != "c"  # the closest other holds the match's own answer
    assert hit.runner_up == pytest.approx(similarities["c"])


async def test_an_embedder_that_fails_costs_a_miss_and_an_unindexed_entry(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Shared by agents' answers and tools' results: the layer's index never raises for it."""
    from collections.abc import Sequence

    from rgruntime.semantic.embedder import Vectors

    class Flaky(HashingEmbedder):
        down = False

        async def embed(self, texts: Sequence[str]) -> Vectors:
            if self.down:
                raise ConnectionError("embedding service unreachable")
            return await super().embed(texts)

    embedder = Flaky()
    index = await semantic_index(
        runtime, "answers", embedder=embedder, threshold=0.8, verifier=None
    )
    await filled(index)
    embedder.down = True
    with caplog.at_level("WARNING", logger="rgruntime.semantic"):
        assert await index.lookup("p", PARIS_AGAIN) is None
        await store(index, "k-new", "where can I buy fresh bread nearby")
        for _ in range(3):
            assert await index.lookup("p", PARIS_AGAIN) is None
    assert index.layer.get_nowait("k-new") is not None  # stored in the layer, unindexed
    stats = index.stats()
    assert (stats.embedding_failures, stats.entries) == (5, 3)
    warnings = [r for r in caplog.records if "embedding service unreachable" in r.getMessage()]
    assert len(warnings) == 1  # the first failure; then every 100th
    embedder.down = False
    hit = await index.lookup("p", PARIS_AGAIN)
    assert hit is not None
    assert hit.key == "k-paris"
