"""The lexical check: each rule on its own, and the paraphrases it must let through."""

from __future__ import annotations

import pytest

from rgruntime.errors import ConfigError, InvalidArgumentError
from rgruntime.semantic import LexicalVerifier

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
