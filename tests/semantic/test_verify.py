"""The lexical check: each rule on its own, the paraphrases it must let through, and the order
in which a lookup checks its candidates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import anyio
import numpy as np
import pytest

from rgruntime.errors import ConfigError, InvalidArgumentError
from rgruntime.semantic import LexicalVerifier, SemanticCache
from rgruntime.semantic.embedder import Vectors
from rgruntime.semantic.verify import surface_agreement

VERIFIER = LexicalVerifier()


@pytest.mark.parametrize(
    ("query", "cached", "reason"),
    [
        ("What is 15% of 200?", "What is 25% of 200?", "number"),
        ("Give me three ideas for a party", "Give me five ideas for a party", "number"),
        ("Explain Python 2 strings", "Explain Python 3 strings", "number"),
        ("What is the second law of thermodynamics?", "What is the third law?", "number"),
        ("Which foods do not contain gluten?", "Which foods contain gluten?", "negation"),
        ("Why doesn't my car start?", "Why does my car start?", "negation"),
        ("Find hotels without parking", "Find hotels with parking", "negation"),
        ("What's the weather in London?", "What's the weather in Paris?", "entity"),
        ("How do I install Python on Ubuntu?", "How do I install Python on Windows?", "entity"),
        ("Reverse a list in JavaScript", "Reverse a list in Java", "entity"),
        ("When was Lincoln born?", "Where was Lincoln born?", "question"),
        ("How do I decrease my credit score?", "How do I increase my credit score?", "antonym"),
        ("How to uninstall Docker", "How to install Docker", "antonym"),
        ("How do I export data from Excel?", "How do I import data into Excel?", "antonym"),
        ("How do I zoom out on a Mac?", "How do I zoom in on a Mac?", "antonym"),
        ("Which stocks went down today?", "Which stocks went up today?", "antonym"),
        ("What makes a bad leader?", "What makes a good leader?", "antonym"),
        ("How do I train my dog?", "How do I train my cat?", "content"),
    ],
)
def test_rejects_what_changes_the_answer(query: str, cached: str, reason: str) -> None:
    verdict = VERIFIER.check(query, cached, similarity=0.9)
    assert not verdict.accepted
    assert verdict.reason == reason


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How's the weather in Paris today, please?", "What is the weather like in Paris today?"),
        ("What is the height of Mount Everest?", "How tall is Mount Everest?"),
        ("Calculate 15 percent of 200", "What is 15% of 200?"),
        ("Can you create a 5-day workout plan for me?", "Give me a 5-day workout plan"),
        ("No, LOAD_HU doesn't exist in v2.10.0.", "LOAD_HU is not a feature of v2.10.0."),
        ("Do you believe in luck? Why or why not?", "Do you really believe in luck?"),
        ("Which city is Australia's capital?", "What is the capital of Australia?"),
        ("Huggingface.js has TypeScript types", "Hugging Face.js has TypeScript types"),
        ("WHAT IS THE BEST WAY TO LEARN PYTHON", "What is the best way to learn Python?"),
    ],
)
def test_accepts_paraphrases(query: str, cached: str) -> None:
    verdict = VERIFIER.check(query, cached, similarity=0.95)
    assert verdict.accepted, verdict


def test_identical_texts_are_accepted() -> None:
    assert VERIFIER.check("Is it safe?", "Is it safe?", 1.0).accepted


def test_content_rule_needs_near_identical_scores() -> None:
    # One changed content word: a low score rejects, a near-identical one accepts.
    assert not VERIFIER.check("How do I train my dog?", "How do I train my cat?", 0.9).accepted
    assert VERIFIER.check("How do I train my dog?", "How do I train my cat?", 0.99).accepted
    assert (
        LexicalVerifier(max_changed_words=0)
        .check("How do I train my dog?", "How do I train my cat?", 0.5)
        .accepted
    )


def test_each_rule_can_be_turned_off() -> None:
    off = LexicalVerifier(
        numbers=False, negation=False, entities=False, questions=False, antonyms=False
    )
    assert off.check("What is 15% of 200?", "What is 25% of 200?", 0.99).accepted
    assert off.check("Is it not safe?", "Is it safe?", 0.99).accepted
    assert off.check("Weather in Paris?", "Weather in London?", 0.99).accepted


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="near_identical"):
        LexicalVerifier(near_identical=1.5)
    with pytest.raises(InvalidArgumentError, match="max_changed_words"):
        LexicalVerifier(max_changed_words=-1)


# -- the swap rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("What do Croats think of Turks?", "What do Turks think of Croats?"),
        ("Are tigers afraid of cats?", "Are cats afraid of tigers?"),
        ("Why is Ronaldo better than Messi?", "Why is Messi better than Ronaldo?"),
        ("Why do men prefer hairless women?", "Why do women prefer hairless men?"),
        ("How do employees evaluate managers?", "How do managers evaluate employees?"),
        ("Convert 5 dollars to 3 euros", "Convert 3 dollars to 5 euros"),
    ],
)
def test_swap_rejects_roles_that_trade_places(query: str, cached: str) -> None:
    verdict = VERIFIER.check(query, cached, similarity=0.99)
    assert not verdict.accepted
    assert verdict.reason == "swap"


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        # Coordinations are symmetric.
        (
            "What is the difference between an alligator and a crocodile?",
            "What is the difference between a crocodile and an alligator?",
        ),
        ("Which is healthier, pasta or rice?", "Which is healthier, rice or pasta?"),
        ("Python vs Java for beginners", "Java vs Python for beginners"),
        # Only function words between the two: no relation swapped.
        ("How far is the Earth from the Moon?", "How far is the Moon from the Earth?"),
        # Not the same words between the two: a genitive, not a relation.
        (
            "What is the salary of a technician at Spotify?",
            "What is a Spotify technician's salary?",
        ),
        # Passives swap subject and object without changing the meaning.
        ("How can an allergy to sawdust be treated?", "How do you treat sawdust allergy?"),
        (
            "Multiple CSV files can be loaded by Datasets",
            "Datasets can load multiple CSV files",
        ),
        # Free word order that is not one exchanged pair.
        ("Which building in Dubai is the tallest?", "What is the tallest building in Dubai?"),
    ],
)
def test_swap_lets_reorderings_through(query: str, cached: str) -> None:
    verdict = VERIFIER.check(query, cached, similarity=0.99)
    assert verdict.accepted, verdict


def test_swap_rule_can_be_turned_off() -> None:
    query, cached = "What do Croats think of Turks?", "What do Turks think of Croats?"
    assert LexicalVerifier(swaps=False).check(query, cached, 0.99).accepted


# -- candidate ranking --------------------------------------------------------------------------


def test_surface_agreement_shares_word_forms_as_written() -> None:
    assert surface_agreement("load the data", "load the data") == 1.0
    assert surface_agreement("load the data", "read a file") == 0.0
    assert surface_agreement("load the data", "load the file") == pytest.approx(2 / 4)
    # Case is kept: AudioFolder and audiofolder are two spellings, which is what tells apart
    # two cached texts that differ only there.
    assert surface_agreement("Use AudioFolder", "Use audiofolder") == pytest.approx(1 / 3)
    assert surface_agreement("", "") == 1.0
    assert surface_agreement("", "text") == 0.0


def test_rank_score_weighs_agreement_and_can_be_turned_off() -> None:
    query, cached = "load the data", "load the file"
    assert VERIFIER.rank_score(query, cached, 0.9) == pytest.approx(0.9 + 0.2 * 0.5)
    assert LexicalVerifier(rank_weight=0.5).rank_score(query, cached, 0.9) == pytest.approx(1.15)
    assert LexicalVerifier(rank_weight=0).rank_score(query, cached, 0.9) == 0.9


@pytest.mark.parametrize("weight", [-0.1, 1.5, True, "0.2", None])
def test_rank_weight_is_validated(weight: object) -> None:
    with pytest.raises(InvalidArgumentError, match="rank_weight") as error:
        LexicalVerifier(rank_weight=weight)  # type: ignore[arg-type]
    assert "between 0 and 1" in str(error.value)


QUERY = "The drop method removes columns and returns a new table"
OWN = "The drop method removes columns and returns a fresh table"
TWIN = "Columns get dropped by the drop method, which gives back another table"


class FixedEmbedder:
    """Vectors chosen by hand: TWIN is nearer to QUERY (0.96) than OWN (0.95)."""

    name = "fixed"
    dimension = 3
    vectors: ClassVar[dict[str, list[float]]] = {
        QUERY: [1.0, 0.0, 0.0],
        OWN: [0.95, math.sqrt(1 - 0.95**2), 0.0],
        TWIN: [0.96, 0.0, math.sqrt(1 - 0.96**2)],
    }

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return np.array([self.vectors[text] for text in texts], dtype=np.float32)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("verifier", "verify", "expected"),
    [
        (LexicalVerifier(), True, "own"),  # re-ranked: OWN shares 9 of its words with QUERY
        (LexicalVerifier(rank_weight=0), True, "twin"),  # nearest first
        (LexicalVerifier(), False, "twin"),  # unverified lookups take the nearest
        (None, True, "twin"),  # no lexical verifier: nothing to rank with
    ],
)
async def test_lookup_checks_the_candidates_in_rank_order(
    verifier: LexicalVerifier | None, verify: bool, expected: str
) -> None:
    assert VERIFIER.check(QUERY, OWN, 0.95).accepted
    assert VERIFIER.check(QUERY, TWIN, 0.96).accepted
    cache = SemanticCache(FixedEmbedder(), threshold=0.9, verifier=verifier)
    async with anyio.create_task_group() as group:
        await group.start(cache.run)
        await cache.add("p", "own", OWN)
        await cache.add("p", "twin", TWIN)
        match = await cache.lookup("p", QUERY, verify=verify)
        assert match is not None
        assert match.key == expected
        assert match.similarity == pytest.approx(0.95 if expected == "own" else 0.96, abs=1e-6)
        group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_rejected_first_ranked_candidate_falls_back_to_the_next() -> None:
    async def refuse_own(query: str, cached: str, similarity: float) -> bool:
        return cached != OWN

    cache = SemanticCache(FixedEmbedder(), threshold=0.9, user_verifier=refuse_own)
    async with anyio.create_task_group() as group:
        await group.start(cache.run)
        await cache.add("p", "own", OWN)
        await cache.add("p", "twin", TWIN)
        match = await cache.lookup("p", QUERY)
        assert match is not None
        assert match.key == "twin"
        assert cache.stats().rejections == {"user": 1}
        group.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("query", "cached", "pair"),
    [
        ("Is the museum open in the afternoon?", "Is the museum open in the evening?", "afternoon"),
        ("What is the top speed of a cheetah?", "What is the average speed of a cheetah?", "top"),
        (
            "How do I sort a dict by key in Python?",
            "How do I sort a dict by value in Python?",
            "key",
        ),
        (
            "Which month is the warmest in Tokyo?",
            "Which month is the wettest in Tokyo?",
            "warmest",
        ),
        ("Which planet has the most moons?", "Which planet has the fewest moons?", "most"),
        ("How many cups are in a litre?", "How many cups are in a gallon?", "litre"),
    ],
)
def test_contrast_rejects_members_of_one_closed_class(query: str, cached: str, pair: str) -> None:
    # At a similarity that the content rule would let through.
    verdict = VERIFIER.check(query, cached, 0.97)
    assert (verdict.accepted, verdict.reason) == (False, "contrast")
    assert pair in verdict.detail


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("What are the best pizza places in Rome?", "What are the top pizza places in Rome?"),
        ("Which restaurants are open on Sunday?", "Which restaurants open on Sunday?"),
        ("What is the interest rate today?", "What's today's interest rate?"),
    ],
)
def test_contrast_lets_other_words_through(query: str, cached: str) -> None:
    assert VERIFIER.check(query, cached, 0.97).reason != "contrast"


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        (
            "How long is the drive from Boston to Chicago?",
            "How long is the drive from Chicago to Boston?",
        ),
        ("Convert 3 feet to metres", "Convert 3 metres to feet"),
        (
            "How do I send money from PayPal to my bank?",
            "How do I send money from my bank to PayPal?",
        ),
    ],
)
def test_swap_rejects_directions_that_trade_places(query: str, cached: str) -> None:
    verdict = VERIFIER.check(query, cached, 0.98)
    assert (verdict.accepted, verdict.reason) == (False, "swap")


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Is the pharmacy open now?", "Is the pharmacy open tonight?"),
        ("How long is the queue at the border now?", "How long was the queue last night?"),
        ("What is the UV index right now?", "What is the UV index at noon?"),
        ("Is the road currently closed?", "Is the road closed tomorrow?"),
    ],
)
def test_the_present_contrasts_with_another_time(query: str, cached: str) -> None:
    verdict = VERIFIER.check(query, cached, 0.95)
    assert (verdict.accepted, verdict.reason) == (False, "contrast")


def test_contrast_rule_can_be_turned_off() -> None:
    off = LexicalVerifier(contrasts=False, max_changed_words=0)
    assert off.check("Open in the afternoon?", "Open in the evening?", 0.97).accepted


# -- implicit-default qualifiers (motivated by the guide's pair) --------------------------------


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How's the weather today?", "What's the weather?"),
        ("Who is the CEO of Apple right now?", "Who is the CEO of Apple?"),
        ("What is today's date?", "What is the date?"),
        ("Which browsers currently support WebGPU?", "Which browsers support WebGPU?"),
    ],
)
def test_an_implicit_default_qualifier_makes_no_difference(query: str, cached: str) -> None:
    verdict = LexicalVerifier().check(query, cached, 0.8)
    assert (verdict.accepted, verdict.equivalent) == (True, True)


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How's the weather tomorrow?", "How's the weather today?"),  # another time word
        ("How's the weather tonight?", "What's the weather?"),
        ("What was the weather today?", "What's the weather?"),  # another tense
        ("Who won the match today?", "Who won the match?"),  # past: "today" picks the match
        ("What should I do from now on?", "What should I do?"),  # not the present default
        ("Which phone should I buy now?", "What is a phone?"),  # more than the frame differs
        ("What is the weather now?", "What is the weather now?"),  # identical: plain accept
        ("What is the weather in Paris now?", "What is the weather in Rome?"),
        # Found by review: one qualifier for another, any other word, not a question, a quote,
        # a name.
        ("Is the store open today?", "Is the store open now?"),
        ("Is the museum open now?", "Is the museum open these days?"),
        ("Who is my manager now?", "Who is your manager?"),
        ("Can I call you now?", "Can you call me?"),
        ("Why is the market down today?", "Is the market down?"),
        ("Is it dark now?", "Is it dark there?"),
        ("Is the store open now?", "Is the store ever open?"),
        ("Translate to French: it is cold today", "Translate to French: it is cold"),
        ("Write a poem about today", "Write a poem"),
        ("How do you say 'today' in Spanish?", "How do you say 'now' in Spanish?"),
        ("What is in USA Today?", "What is in USA?"),
        ("", "now"),
    ],
)
def test_an_implicit_default_qualifier_is_no_equivalence_otherwise(query: str, cached: str) -> None:
    verdict = LexicalVerifier().check(query, cached, 0.8)
    assert not verdict.equivalent


def test_the_implicit_default_rule_can_be_turned_off() -> None:
    verdict = LexicalVerifier(implicit_defaults=False).check(
        "How's the weather today?", "What's the weather?", 0.81
    )
    assert (verdict.accepted, verdict.reason) == (False, "content")
