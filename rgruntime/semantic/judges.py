"""Judges: would a cached answer have been right for a question it was not cached for?

Under ``max_error_rate`` a candidate match that the evidence cannot yet vouch for is *verified*:
the request runs as a miss, and a judge compares the cached answer with the fresh one. Its verdict
is what :class:`~rgruntime.semantic.error_bound.ErrorBoundPolicy` learns from, so it is taken as
the truth: a judge that calls different wordings of one answer "wrong" makes the cache serve less
(it errs safe); one that calls different answers "right" breaks the promise.

- :class:`AnswerJudge` (the default): equal after normalizing case, spaces and punctuation, else
  the cosine similarity of the two answers' embeddings at or above ``same_answer`` (0.95).
- any ``async def judge(query, cached_answer, fresh_answer) -> bool``;
- ``"model"``: the agent's own model is asked a yes / no question (:func:`model_judge_messages`,
  :func:`parse_verdict`); the client counts that call in the result's usage and cost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, Final

import numpy as np

from rgruntime.semantic.embedder import Embedder

__all__ = [
    "SAME_ANSWER",
    "AnswerJudge",
    "Judge",
    "answer_text",
    "model_judge_prompt",
    "normalized",
    "parse_verdict",
]

#: (query, cached answer, fresh answer) -> would the cached answer have been right?
Judge = Callable[[str, str, str], Awaitable[bool]]

#: Two answers whose embeddings are at least this similar are taken as the same answer. High on
#: purpose: answers that differ in one number or name still score 0.9 and more.
SAME_ANSWER: Final = 0.95

_PUNCTUATION: Final = re.compile(r"[^\w\s]")
_SPACES: Final = re.compile(r"\s+")


def answer_text(value: Any) -> str:
    """The text of a cached value: a response's ``output``, else its ``str``."""
    output = getattr(value, "output", None)
    return output if isinstance(output, str) else str(value)


def normalized(text: str) -> str:
    """Case-folded, NFKC, punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


class AnswerJudge:
    """The default judge: the same answer after normalizing, or embeddings nearly equal."""

    def __init__(self, embedder: Embedder, same_answer: float = SAME_ANSWER) -> None:
        self.embedder = embedder
        self.same_answer = same_answer

    async def __call__(self, query: str, cached_answer: str, fresh_answer: str) -> bool:
        if normalized(cached_answer) == normalized(fresh_answer):
            return True
        vectors = await self.embedder.embed([cached_answer, fresh_answer])
        similarity = float(np.dot(vectors[0], vectors[1]))
        return similarity >= self.same_answer


def model_judge_prompt(query: str, cached_answer: str, fresh_answer: str) -> str:
    """The yes / no question put to the agent's model by ``judge="model"``."""
    return (
        "Two answers were given to the question below. Answer YES if the first answer would be "
        "a correct and complete answer to the question wherever the second one is, NO if it "
        "differs in any fact, number, name, or conclusion. Reply with YES or NO only.\n\n"
        f"Question: {query}\n\nFirst answer: {cached_answer}\n\nSecond answer: {fresh_answer}"
    )


def parse_verdict(text: str) -> bool:
    """True only for a reply that starts with "yes" (anything unclear counts as wrong: safe)."""
    return normalized(text).startswith("yes")
