"""A lookup by meaning under an error bound, and the settling of a verified candidate.

The glue between a layer's :class:`~rgruntime.semantic.layer_index.LayerSemanticIndex` and its
:class:`~rgruntime.semantic.error_bound.ErrorBoundPolicy`, shared by the client's answers
(:mod:`rgruntime.agents.semantic_responses`) and by tool results cached with
``strategy="semantic"`` (:mod:`rgruntime.tools.caching`):

1. :func:`bounded_lookup` finds the best lexically verified candidate at or above the policy's
   floor and asks the policy of the caller's bound and judge: a hit to serve, a :class:`Pending`
   candidate to verify, or nothing;
2. the caller runs the request as a miss and returns the fresh value; then :func:`settle` judges
   whether the candidate's value would have been right, and the policy that decided learns the
   outcome.

The policy is the one of the judge that will give the verdict: what one judge calls right never
teaches another's agents (:mod:`rgruntime.semantic.judged_policies`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.judges import ANSWER_JUDGE, JudgeIdentity, answer_text

if TYPE_CHECKING:
    from rgruntime.semantic.error_bound import Decision, ErrorBoundPolicy
    from rgruntime.semantic.layer_index import LayerSemanticIndex, SemanticHit

__all__ = ["BoundedLookup", "Pending", "answer_text", "bounded_lookup", "settle"]

logger = logging.getLogger("rgruntime.semantic")


@attrs.frozen
class Pending:
    """A candidate being verified: judge its value against the fresh one, then learn."""

    index: LayerSemanticIndex
    #: The policy that decided, and learns the verdict (the judge's own: never another's).
    policy: ErrorBoundPolicy
    partition: str
    text: str
    hit: SemanticHit
    decision: Decision


@attrs.frozen
class BoundedLookup:
    """What a lookup found: a value to serve, a candidate to verify, or neither."""

    hit: SemanticHit | None = None
    pending: Pending | None = None


async def bounded_lookup(
    index: LayerSemanticIndex,
    bound: float,
    partition: str,
    text: str,
    judge: JudgeIdentity = ANSWER_JUDGE,
) -> BoundedLookup:
    """Look ``text`` up in ``partition`` under ``bound``, as taught by ``judge``'s verdicts."""
    policy = index.error_bound(bound, judge)
    hit = await index.lookup(partition, text, threshold=policy.settings.floor)
    if hit is None:
        return BoundedLookup()
    decision = policy.decide(
        partition, hit.key, hit.similarity, hit.runner_up, equivalent=hit.equivalent
    )
    if decision.action == "serve":
        return BoundedLookup(hit=hit)
    if decision.action == "verify":
        return BoundedLookup(pending=Pending(index, policy, partition, text, hit, decision))
    return BoundedLookup()


async def settle(pending: Pending, judge: Callable[[], Awaitable[object]]) -> bool | None:
    """Ask ``judge`` whether the candidate would have been right, and teach the policy.

    The request was answered with its fresh result already: a judge that fails (raises, or
    answers anything but True or False; numpy's booleans are taken as booleans) must not fail it.
    The failure is logged and counted (``judge_failures``), nothing is learned, and None is
    returned. Cancellation is not a failure: it goes through.
    """
    try:
        verdict = await judge()
    except Exception:
        pending.policy.judge_failed()
        logger.warning(
            "the semantic judge failed: nothing learned from this candidate", exc_info=True
        )
        return None
    if isinstance(verdict, np.bool_):
        verdict = bool(verdict)
    if not isinstance(verdict, bool):
        pending.policy.judge_failed()
        logger.warning(
            "%s: nothing learned from this candidate",
            InvalidArgumentError("the semantic judge returned", verdict, "True or False"),
        )
        return None
    # The policy held since the lookup, not looked up again: had the index dropped it meanwhile
    # (judged_policies), a new one would learn from a decision it never made.
    pending.policy.record(pending.partition, pending.hit.key, pending.decision, verdict)
    return verdict
