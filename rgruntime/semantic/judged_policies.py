"""The error-bound policies of one semantic index: one per bound and judge, a bounded number.

What a policy learns is its judge's verdicts, taken as the truth. Pooled over every agent, tenant
and tool of a layer, a lenient judge would teach it for all of them: 100 "right" verdicts end a
similarity's probation, and the layer would then serve by meaning to every tenant. So the
evidence is kept per (bound, :class:`~rgruntime.semantic.judges.JudgeIdentity`): the default
answer judge is one identity, ``judge="model"`` one per model, a custom callable its own. The
entries stay shared (one index, one set of vectors): only the evidence is per judge, and every
policy forgets an entry that left the layer.

**How many.** The default judge's policies (one per bound) are always kept. The others are an
LRU of at most ``limit`` (:data:`MAX_JUDGE_POLICIES`, over all bounds of the index): a custom judge
is compared by identity, so an application that makes a new closure or ``functools.partial`` for
each agent makes a new judge each time, and without a limit their policies (each with evidence
per entry) would grow without end. Past the limit the least recently used policy is dropped.
*Why dropping, not refusing:* dropping evidence never serves more by meaning, it only sends that
judge's agents back to probation (every candidate verified, the precision-first start), whereas
an error would fail requests of a long-running service whose old agents are long gone. The
price, stated: a judge dropped while in use pays its probation again, and a kept policy keeps its
judge (the callable, and what it holds) alive until it is dropped. The first drop of an index
is logged as a warning (a sign of judges made per agent or per call); ``dropped`` counts them all
(:attr:`~rgruntime.semantic.records.SemanticStats.judge_policies_dropped`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final

import attrs

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.error_bound import ErrorBoundPolicy, ErrorBoundSettings, ErrorBoundStats
from rgruntime.semantic.judges import ANSWER_JUDGE, JudgeIdentity

__all__ = ["MAX_JUDGE_POLICIES", "JudgedPolicies"]

logger = logging.getLogger("rgruntime.semantic")

#: How many policies of judges other than the default answer judge one index keeps (over all its
#: bounds) before it drops the least recently used.
MAX_JUDGE_POLICIES: Final = 64


@attrs.frozen
class _Named:
    policy: ErrorBoundPolicy
    #: Its key in the statistics, unique among the policies kept.
    label: str


def default_label(bound: float) -> str:
    """The statistics' key of the default judge's policy for ``bound`` (``"0.02"``)."""
    return f"{bound:g}"


class JudgedPolicies:
    """The policies of one index, by bound and judge (see the module's docstring).

    Statistics keys: ``"0.02"`` for the default answer judge (as before judges were kept apart),
    ``"0.02 judge=model:gpt-4o"`` for ``judge="model"`` with that model, ``"0.02 judge=<the
    callable's __qualname__>"`` for a custom judge, with ``" #2"``, ``" #3"``... when several
    judges kept share a name (e.g. closures made by one function).
    """

    def __init__(self, limit: int = MAX_JUDGE_POLICIES) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgumentError("limit", limit, "a whole number of policies, at least 1")
        self.limit = limit
        self.dropped = 0
        self._default: dict[float, ErrorBoundPolicy] = {}
        # Least recently used first.
        self._judged: OrderedDict[tuple[float, JudgeIdentity], _Named] = OrderedDict()

    def __len__(self) -> int:
        return len(self._default) + len(self._judged)

    def get(self, bound: float, judge: JudgeIdentity = ANSWER_JUDGE) -> ErrorBoundPolicy:
        """The policy of ``judge`` for ``bound`` (made on first use; a use refreshes it)."""
        if judge.kind == "answer":
            policy = self._default.get(bound)
            if policy is None:
                policy = self._default[bound] = _new(bound)
            return policy
        key = (bound, judge)
        named = self._judged.get(key)
        if named is not None:
            self._judged.move_to_end(key)
            return named.policy
        if len(self._judged) >= self.limit:
            self._drop_oldest()
        named = self._judged[key] = _Named(_new(bound), self._label(bound, judge))
        return named.policy

    def _drop_oldest(self) -> None:
        _, oldest = self._judged.popitem(last=False)
        self.dropped += 1
        if self.dropped == 1:
            logger.warning(
                "semantic index: more than %d judges' error-bound policies; dropped the least "
                "recently used (%s), whose agents start over on probation. Judges are compared "
                "by identity: make one judge and pass it to every agent, not one per agent.",
                self.limit,
                oldest.label,
            )

    def _label(self, bound: float, judge: JudgeIdentity) -> str:
        base = f"{default_label(bound)} judge={judge.name}"
        taken = {named.label for named in self._judged.values()}
        label, number = base, 1
        while label in taken:
            number += 1
            label = f"{base} #{number}"
        return label

    def forget(self, key: str) -> None:
        """An entry left the layer: every policy forgets its own evidence of it."""
        for policy in self._policies():
            policy.forget((key,))

    def _policies(self) -> list[ErrorBoundPolicy]:
        return [*self._default.values(), *(named.policy for named in self._judged.values())]

    def stats(self) -> dict[str, ErrorBoundStats]:
        """Each policy's statistics by its key: the default judge's first, then by key."""
        found = {default_label(bound): policy.stats() for bound, policy in self._default.items()}
        for named in sorted(self._judged.values(), key=lambda named: named.label):
            found[named.label] = named.policy.stats()
        return found


def _new(bound: float) -> ErrorBoundPolicy:
    return ErrorBoundPolicy(ErrorBoundSettings(max_error_rate=bound))
