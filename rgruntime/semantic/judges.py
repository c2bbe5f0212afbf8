"""Judges: would a cached answer have been right for a question it was not cached for?

Under ``max_error_rate`` a candidate match that the evidence cannot yet vouch for is *verified*:
the request runs as a miss, and a judge compares the cached answer with the fresh one. Its verdict
is what :class:`~rgruntime.semantic.error_bound.ErrorBoundPolicy` learns from, so it is taken as
the truth: a judge that calls different wordings of one answer "wrong" makes the cache serve less
(it errs safe); one that calls different answers "right" breaks the promise.

- :class:`AnswerJudge` (the default): equal after normalizing case, spaces and punctuation, else
  the cosine similarity of the two answers' embeddings at or above ``same_answer`` (0.95).
- any ``async def judge(query, cached_answer, fresh_answer) -> bool``;
- ``"model"``: the agent's own model is asked a yes / no question (:func:`model_judge_prompt`,
  :func:`parse_verdict`); the client counts that call in the result's usage and cost.

Because the verdicts are the truth the policy learns, they are never pooled across judges: each
:class:`JudgeIdentity` teaches policies of its own (:func:`judge_identity`,
:mod:`rgruntime.semantic.judged_policies`), so a lenient judge opens serving by meaning for the
agents that chose it, not for the others on the layer.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, Literal

import attrs
import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.embedder import Embedder

__all__ = [
    "ANSWER_JUDGE",
    "SAME_ANSWER",
    "AnswerJudge",
    "Judge",
    "JudgeIdentity",
    "answer_text",
    "judge_identity",
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


@attrs.frozen
class JudgeIdentity:
    """Whose verdicts teach an error-bound policy: two identities never pool their evidence.

    Pooled, a lenient judge (one that calls every cached answer right) would teach the layer's
    policy for every agent on it, and cheaply: 100 of its verdicts end a similarity's probation.
    So each identity learns apart:

    - the default answer judge (:data:`ANSWER_JUDGE`): one identity per index, since its verdicts
      depend only on the index's embedder;
    - ``judge="model"``: one identity per model (its leniency is the model's);
    - a custom async callable: its own identity, compared as a dict key compares the callable:
      a function (a closure, a ``functools.partial``) by identity, so one made anew for each
      agent is a new judge that starts cold; a bound method by its object and function
      (``service.judge`` read twice is one judge); an object that defines ``__eq__`` and
      ``__hash__`` by its value; one that cannot be hashed, by identity.
    """

    kind: Literal["answer", "model", "custom"]
    #: What tells two identities of a kind apart: the model's name ("model"), the callable or a
    #: box comparing it by identity ("custom").
    of: Hashable = None
    #: How statistics name it ("model:gpt-4o", a callable's ``__qualname__``): not compared, so
    #: two judges with one name stay two.
    name: str = attrs.field(default="", eq=False)


#: The default judge, :class:`AnswerJudge` (``judge="answer"``).
ANSWER_JUDGE: Final = JudgeIdentity("answer")


class _ByIdentity:
    """A callable that cannot be hashed, compared by identity (the box keeps it alive, so its
    ``id`` is not reused while the box is a key)."""

    __slots__ = ("function",)

    def __init__(self, function: object) -> None:
        self.function = function

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.function is self.function

    def __hash__(self) -> int:
        return id(self.function)


def _comparable(function: object) -> Hashable:
    try:
        hash(function)
    except TypeError:
        return _ByIdentity(function)
    return function


def _qualname(function: object) -> str:
    """A callable's ``__qualname__`` (a partial: what it calls; an object: its class's)."""
    while isinstance(function, functools.partial):
        function = function.func
    name = getattr(function, "__qualname__", None)
    return name if isinstance(name, str) else type(function).__qualname__


def judge_identity(judge: object, model: str) -> JudgeIdentity:
    """The identity of ``semantic_cache.judge`` for an agent whose model is ``model``."""
    if isinstance(judge, str):
        if judge == "answer":
            return ANSWER_JUDGE
        if judge == "model":
            return JudgeIdentity("model", model, f"model:{model}")
    elif callable(judge):
        return JudgeIdentity("custom", _comparable(judge), _qualname(judge))
    raise InvalidArgumentError("judge", judge, '"answer", "model" or an async callable')
