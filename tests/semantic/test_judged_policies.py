"""Evidence under an error bound is kept per judge: a lenient judge opens serving for itself only.

The index-level tests use the hashing embedder with the lexical check off (no model): they are
about whose verdicts teach which policy, not about similarity.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator

import pytest

import rgruntime
from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic import ANSWER_JUDGE, HashingEmbedder, judge_identity, semantic_index
from rgruntime.semantic.bounded import bounded_lookup, settle
from rgruntime.semantic.judged_policies import MAX_JUDGE_POLICIES, JudgedPolicies
from rgruntime.semantic.judges import JudgeIdentity
from rgruntime.semantic.layer_index import LayerSemanticIndex

PARIS = "what is the weather like in paris today"
PARIS_AGAIN = "what is the weather like in paris today please"


async def always_right(query: str, cached_answer: str, fresh_answer: str) -> bool:
    """The lenient judge: every cached answer would have been right."""
    return True


class Service:
    """A judge that is a method of an object (an unhashable one: it defines ``__eq__``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Service)

    __hash__ = None  # type: ignore[assignment]

    async def judge(self, query: str, cached_answer: str, fresh_answer: str) -> bool:
        return True

    async def __call__(self, query: str, cached_answer: str, fresh_answer: str) -> bool:
        return True


def custom(name: str) -> JudgeIdentity:
    """A judge made anew (as a closure made per agent would be)."""

    async def judge(query: str, cached_answer: str, fresh_answer: str) -> bool:
        return True

    judge.__qualname__ = name
    return judge_identity(judge, "sim-small")


# -- identities (pure) ---------------------------------------------------------------------------


def test_the_default_and_the_model_judges_have_one_identity_each() -> None:
    assert judge_identity("answer", "gpt-4o") == ANSWER_JUDGE
    assert judge_identity("answer", "gpt-4o-mini") == ANSWER_JUDGE
    gpt4o = judge_identity("model", "gpt-4o")
    assert gpt4o == judge_identity("model", "gpt-4o")
    assert gpt4o != judge_identity("model", "gpt-4o-mini")  # its leniency is the model's
    assert gpt4o != ANSWER_JUDGE
    assert gpt4o.name == "model:gpt-4o"


def test_a_custom_judge_is_compared_as_a_dict_key_compares_it() -> None:
    mine = judge_identity(always_right, "sim-small")
    assert mine == judge_identity(always_right, "gpt-4o")  # the model plays no part
    assert mine not in (ANSWER_JUDGE, judge_identity("model", "sim-small"))
    assert mine.name == "always_right"
    # Closures made anew are new judges, even with one name.
    assert custom("judge") != custom("judge")
    # A bound method read twice is one judge, even of an object that cannot be hashed...
    service = Service()
    assert judge_identity(service.judge, "m") == judge_identity(service.judge, "m")
    assert judge_identity(service.judge, "m").name == "Service.judge"
    # ...but another object's method is another judge, though the objects are equal.
    assert judge_identity(service.judge, "m") != judge_identity(Service().judge, "m")
    # An unhashable callable object: by identity.
    assert judge_identity(service, "m") == judge_identity(service, "m")
    assert judge_identity(service, "m") != judge_identity(Service(), "m")
    assert judge_identity(service, "m").name == "Service"
    partial = functools.partial(always_right, "query")
    assert judge_identity(partial, "m").name == "always_right"
    assert judge_identity(partial, "m") != mine


@pytest.mark.parametrize("judge", ["models", "", 42, None])
def test_a_judge_that_is_none_of_the_three_is_refused(judge: object) -> None:
    with pytest.raises(InvalidArgumentError, match="async callable") as raised:
        judge_identity(judge, "sim-small")
    assert raised.value.field == "judge"
    assert repr(judge) in str(raised.value)


# -- how many policies an index keeps (pure) -----------------------------------------------------


def test_past_the_limit_the_least_recently_used_judge_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policies = JudgedPolicies(limit=2)
    first, second, third = custom("first"), custom("second"), custom("third")
    default = policies.get(0.02)
    kept = policies.get(0.02, first)
    kept.record("p", "k", 0.97, True)
    policies.get(0.02, second)
    assert policies.get(0.02, first) is kept  # a use: now the most recently used
    with caplog.at_level(logging.WARNING, logger="rgruntime.semantic"):
        policies.get(0.02, third)  # drops "second", the least recently used
        policies.get(0.01, second)  # a new policy: drops "first"
    assert policies.dropped == 2
    assert len(caplog.records) == 1  # the first drop is logged, the next ones counted
    assert "0.02 judge=second" in caplog.records[0].getMessage()
    # The default judge's policies are never dropped, and do not count towards the limit.
    assert policies.get(0.02) is default
    assert len(policies) == 3
    assert list(policies.stats()) == ["0.02", "0.01 judge=second", "0.02 judge=third"]
    # A dropped judge starts over, with no evidence: never more served, only verified again.
    again = policies.get(0.02, first)
    assert again is not kept
    assert again.stats().judged == 0
    assert policies.dropped == 3


def test_judges_that_share_a_name_get_distinct_keys() -> None:
    policies = JudgedPolicies()
    for _ in range(3):
        policies.get(0.02, custom("make.<locals>.judge"))
    policies.get(0.02, judge_identity("model", "gpt-4o"))
    assert list(policies.stats()) == [
        "0.02 judge=make.<locals>.judge",
        "0.02 judge=make.<locals>.judge #2",
        "0.02 judge=make.<locals>.judge #3",
        "0.02 judge=model:gpt-4o",
    ]


def test_the_default_limit_holds_with_a_new_judge_per_call() -> None:
    policies = JudgedPolicies()
    for _ in range(MAX_JUDGE_POLICIES * 3):
        policies.get(0.02, custom("per_call"))
    assert len(policies) == MAX_JUDGE_POLICIES
    assert policies.dropped == MAX_JUDGE_POLICIES * 2


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "64"])
def test_a_bad_limit_is_refused(limit: object) -> None:
    with pytest.raises(InvalidArgumentError, match="at least 1") as raised:
        JudgedPolicies(limit=limit)  # type: ignore[arg-type]
    assert raised.value.field == "limit"


# -- on a layer's index --------------------------------------------------------------------------


@pytest.fixture
async def index() -> AsyncIterator[LayerSemanticIndex]:
    """The tool layer's index, one entry of PARIS in each of two partitions."""
    async with rgruntime.open_runtime() as runtime:
        index = await semantic_index(runtime, "tool", embedder=HashingEmbedder(), verifier=None)
        for partition in ("tenant-a", "tenant-b"):
            await index.layer.set(f"k-{partition}", f"answer to {PARIS}")
            await index.add(partition, f"k-{partition}", PARIS)
        yield index


async def judged(
    index: LayerSemanticIndex, partition: str, judge: JudgeIdentity, verdict: bool
) -> None:
    """One candidate verified and judged (it must be verified, not served)."""
    found = await bounded_lookup(index, 0.02, partition, PARIS_AGAIN, judge)
    assert found.hit is None
    assert found.pending is not None

    async def decide() -> bool:
        return verdict

    await settle(found.pending, decide)


@pytest.mark.anyio
async def test_a_lenient_judge_opens_serving_for_itself_not_for_the_default_judge(
    index: LayerSemanticIndex,
) -> None:
    lenient = judge_identity(always_right, "sim-small")
    # Its probation: 100 "right" verdicts, every candidate verified meanwhile.
    for _ in range(100):
        await judged(index, "tenant-a", lenient, True)
    served = await bounded_lookup(index, 0.02, "tenant-a", PARIS_AGAIN, lenient)
    assert served.hit is not None
    assert served.hit.key == "k-tenant-a"
    # Its evidence counts for its agents in another partition too (counts cross partitions)...
    assert (await bounded_lookup(index, 0.02, "tenant-b", PARIS_AGAIN, lenient)).hit is not None
    # ...but not for the default judge, neither in the same partition nor in another, nor for
    # the model judge: each still verifies.
    for judge in (ANSWER_JUDGE, judge_identity("model", "sim-small")):
        for partition in ("tenant-a", "tenant-b"):
            found = await bounded_lookup(index, 0.02, partition, PARIS_AGAIN, judge)
            assert (found.hit, found.pending is not None) == (None, True)
    bounds = index.stats().error_bound
    assert list(bounds) == ["0.02", "0.02 judge=always_right", "0.02 judge=model:sim-small"]
    assert (bounds["0.02"].served, bounds["0.02"].judged, bounds["0.02"].verified) == (0, 0, 2)
    mine = bounds["0.02 judge=always_right"]
    assert (mine.served, mine.judged, mine.judged_wrong) == (2, 100, 0)
    assert index.stats().judge_policies_dropped == 0


@pytest.mark.anyio
async def test_the_default_judge_keeps_its_key_and_its_own_probation(
    index: LayerSemanticIndex,
) -> None:
    for _ in range(99):
        await judged(index, "tenant-a", ANSWER_JUDGE, True)
    # A lenient judge's verdicts do not complete the default judge's probation.
    await judged(index, "tenant-a", judge_identity(always_right, "sim-small"), True)
    await judged(index, "tenant-b", ANSWER_JUDGE, True)  # the 100th: still verified
    found = await bounded_lookup(index, 0.02, "tenant-b", PARIS_AGAIN)
    assert found.hit is not None
    assert index.error_bound(0.02) is index.error_bound(0.02, ANSWER_JUDGE)
    assert index.stats().error_bound["0.02"].judged == 100


@pytest.mark.anyio
async def test_an_entry_that_leaves_the_layer_is_forgotten_by_every_judges_policy(
    index: LayerSemanticIndex,
) -> None:
    judges = (ANSWER_JUDGE, judge_identity("model", "gpt-4o"), judge_identity(always_right, "m"))
    for judge in judges:
        await judged(index, "tenant-a", judge, True)
    assert [index.error_bound(0.02, judge).stats().entries for judge in judges] == [1, 1, 1]
    assert await index.layer.delete("k-tenant-a")
    assert [index.error_bound(0.02, judge).stats().entries for judge in judges] == [0, 0, 0]
    # What the entry taught each policy stays.
    assert [index.error_bound(0.02, judge).stats().judged for judge in judges] == [1, 1, 1]
