"""A layer's semantic hit names its runner-up only when that entry holds another answer: two
cached phrasings of one question are no ambiguity (the error bound would verify them forever)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import rgruntime
from rgruntime import Runtime
from rgruntime.semantic import HashingEmbedder, semantic_index
from rgruntime.semantic.layer_index import LayerSemanticIndex

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

PARIS = "what is the weather like in paris"
PARIS_LIKE = "what is the weather like in paris please"
ASKED = "what is the weather like in paris now"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    config = {"layers": {"answers": {"ttl": None, "max_entries": 10}}}
    async with rgruntime.open_runtime(config) as runtime:
        yield runtime


@pytest.fixture
async def index(runtime: Runtime) -> LayerSemanticIndex:
    return await semantic_index(
        runtime, "answers", embedder=HashingEmbedder(), threshold=0.3, verifier=None
    )


async def store(index: LayerSemanticIndex, key: str, text: str, answer: str) -> None:
    await index.layer.set(key, answer)
    await index.add("p", key, text)


async def test_a_runner_up_with_another_answer_is_reported(index: LayerSemanticIndex) -> None:
    await store(index, "paris", PARIS, "Sunny")
    await store(index, "paris-2", PARIS_LIKE, "Rain all day")
    hit = await index.lookup("p", ASKED)
    assert hit is not None
    assert hit.runner_up is not None
    assert hit.runner_up <= hit.similarity


async def test_a_runner_up_with_the_same_answer_is_no_ambiguity(index: LayerSemanticIndex) -> None:
    await store(index, "paris", PARIS, "Sunny, 21 degrees.")
    await store(index, "paris-2", PARIS_LIKE, "sunny 21 degrees")  # the same, normalized
    hit = await index.lookup("p", ASKED)
    assert hit is not None
    assert hit.runner_up is None


async def test_a_runner_up_that_left_the_layer_is_no_ambiguity(index: LayerSemanticIndex) -> None:
    await store(index, "paris", PARIS, "Sunny")
    await index.layer.set("paris-2", "Rain")
    await index.add("p", "paris-2", PARIS_LIKE)
    hit = await index.lookup("p", ASKED)
    assert hit is not None
    assert hit.runner_up is not None
    other = "paris" if hit.key == "paris-2" else "paris-2"
    await index.layer.delete(other)
    again = await index.lookup("p", ASKED)
    assert again is not None
    assert again.runner_up is None


async def test_the_runner_up_is_the_closest_entry_with_another_answer(
    index: LayerSemanticIndex,
) -> None:
    # A second phrasing with the match's own answer, closer than anything else, must not hide
    # a third entry that holds another answer.
    await store(index, "a", PARIS, "Sunny")
    await store(index, "b", f"{ASKED} please", "Sunny")
    await store(index, "c", f"{ASKED} thanks", "Rain all day")
    match = await index.cache.lookup("p", ASKED, verify=False)
    hit = await index.lookup("p", ASKED)
    assert match is not None
    assert hit is not None
    similarities = dict(match.others)
    assert match.others[0][0] != "c"  # the closest other holds the match's own answer
    assert hit.runner_up == pytest.approx(similarities["c"])
