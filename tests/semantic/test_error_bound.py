"""The serve / verify / miss policy under an error bound (pure and synchronous)."""

from __future__ import annotations

import random

import pytest

from rgruntime.errors import InvalidArgumentError
from rgruntime.semantic.error_bound import (
    ErrorBoundPolicy,
    ErrorBoundSettings,
    Evidence,
    Prior,
    anytime_proves_within,
    wilson_interval,
)
from rgruntime.semantic.judges import normalized, parse_verdict

Z95 = 1.959964


def policy(bound: float = 0.02, **options: object) -> ErrorBoundPolicy:
    return ErrorBoundPolicy(ErrorBoundSettings(max_error_rate=bound, **options))  # type: ignore[arg-type]


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(1, 200, Z95)
    assert low == pytest.approx(0.000883, abs=1e-5)
    assert high == pytest.approx(0.02772, abs=1e-4)
    assert wilson_interval(0, 0, Z95) == (0.0, 1.0)
    assert wilson_interval(0, 100, Z95)[0] == 0.0


@pytest.mark.parametrize(
    ("bound", "clean", "one_wrong"), [(0.01, 449, 683), (0.02, 224, 340), (0.05, 88, 134)]
)
def test_the_anytime_proof_needs_these_many_outcomes(
    bound: float, clean: int, one_wrong: int
) -> None:
    assert not anytime_proves_within(0, clean - 1, bound, 0.05)
    assert anytime_proves_within(0, clean, bound, 0.05)
    assert not anytime_proves_within(1, one_wrong - 1, bound, 0.05)
    assert anytime_proves_within(1, one_wrong, bound, 0.05)
    # More right outcomes never undo a proof; an observed rate at the bound never proves it.
    assert all(anytime_proves_within(1, n, bound, 0.05) for n in range(one_wrong, 3 * one_wrong))
    assert not anytime_proves_within(50, round(50 / bound), bound, 0.05)
    assert not anytime_proves_within(0, 0, bound, 0.05)
    # Fractional counts (a prior's) are rounded the cautious way: 0.2 wrong counts as one.
    assert not anytime_proves_within(0.2, clean, bound, 0.05)


def test_the_anytime_proof_is_rarely_fooled_when_asked_after_every_outcome() -> None:
    # 200 streams wrong exactly at the bound (5%), the question asked after each of 1,000
    # outcomes: a proof valid over time is fooled at most 5% of the time in expectation (Ville's
    # inequality); the Wilson interval, asked the same way, is fooled far more often.
    bound, fooled, fooled_wilson = 0.05, 0, 0
    for seed in range(200):
        draw = random.Random(seed).random
        wrong, ours, wilson = 0, False, False
        for total in range(1, 1001):
            wrong += draw() < bound
            ours = ours or anytime_proves_within(wrong, total, bound, 0.05)
            wilson = wilson or (total >= 50 and wilson_interval(wrong, total, Z95)[1] <= bound)
        fooled += ours
        fooled_wilson += wilson
    assert fooled <= 10
    assert fooled_wilson > 2 * fooled


def test_evidence_counts_tails_and_bands() -> None:
    evidence = Evidence()
    evidence.add(0.95, True)
    evidence.add(0.90, False)
    evidence.add(0.80, True, weight=2.0)
    assert evidence.tail(0.9) == (2.0, 1.0)
    assert evidence.tail(0.96) == (0.0, 0.0)
    assert evidence.band(0.81, 0.02) == (2.0, 0.0)
    totals, wrongs = evidence.tails()
    assert (totals[0], wrongs[0]) == (4.0, 1.0)


def proven(learner: ErrorBoundPolicy, similarity: float, count: int) -> ErrorBoundPolicy:
    """``count`` right judgements at ``similarity``, in entries of their own."""
    for number in range(count):
        learner.record("warm", f"warm-{similarity}-{number}", similarity, True)
    return learner


@pytest.mark.parametrize("bound", [0.01, 0.02, 0.05])
def test_a_cold_index_serves_nothing_until_outcomes_prove_a_similarity(bound: float) -> None:
    cold = policy(bound)
    assert cold.threshold is None
    assert cold.decide("p", "k", 0.999).action == "verify"  # judged, never served blind
    assert cold.decide("p", "k", 0.85).action == "verify"
    assert cold.decide("p", "k", 0.5).action == "miss"  # below the floor: never judged


def test_right_outcomes_prove_a_threshold_at_the_stated_confidence() -> None:
    # 0 wrong of n: Robbins' mixture reaches 1 / 0.05 from n = 224 on at 2% (probation off:
    # the proof alone).
    assert policy(0.02, probation=0).threshold is None
    assert proven(policy(0.02, probation=0), 0.97, 223).threshold is None
    learner = proven(policy(0.02, probation=0), 0.97, 224)
    assert learner.threshold == pytest.approx(0.97)
    assert learner.decide("p", "k", 0.98).action == "serve"
    assert learner.decide("p", "k", 0.96).action == "verify"  # below what was proven


def test_probation_serves_after_a_hundred_right_outcomes_and_ends_at_the_first_wrong() -> None:
    assert proven(policy(0.02), 0.97, 99).threshold is None
    learner = proven(policy(0.02), 0.97, 100)
    assert learner.threshold == pytest.approx(0.97)
    assert learner.decide("p", "k", 0.98).action == "serve"
    assert learner.decide("p", "k", 0.96).action == "verify"
    # Outcomes lower down widen it only while none of the tail is wrong.
    proven(learner, 0.93, 1)
    assert learner.threshold == pytest.approx(0.93)
    learner.record("p", "bad", 0.95, False)
    # Back above the wrong one (only a similarity that holds outcomes can be the threshold).
    assert learner.threshold == pytest.approx(0.97)
    learner.record("p", "bad-2", 0.99, False)
    assert learner.threshold is None  # the Wilson proof (189 right for one wrong...) is not there


@pytest.mark.parametrize("bound", [0.01, 0.02, 0.05])
def test_probation_is_the_same_for_every_bound(bound: float) -> None:
    assert proven(policy(bound), 0.97, 100).threshold == pytest.approx(0.97)


def test_no_similarity_is_served_on_fewer_outcomes_than_the_probation() -> None:
    # At 5% the proof alone takes 88 right outcomes; the probation's 100 are needed first.
    assert proven(policy(0.05, probation=0), 0.97, 88).threshold == pytest.approx(0.97)
    learner = proven(policy(0.05), 0.97, 88)
    assert learner.threshold is None
    learner.record("p", "bad", 0.98, False)
    proven(learner, 0.97, 44)  # 133 outcomes, one wrong: not yet a proof
    assert learner.threshold is None
    proven(learner, 0.97, 1)  # 134, one wrong: proven
    assert learner.threshold == pytest.approx(0.97)


def test_an_ambiguous_candidate_is_verified_and_learned_apart() -> None:
    learner = proven(policy(0.02), 0.97, 200)
    assert learner.decide("p", "k", 0.98, runner_up=0.93).action == "serve"  # 0.05 apart
    decision = learner.decide("p", "k", 0.98, runner_up=0.94)
    assert (decision.action, decision.ambiguous) == ("verify", True)
    learner.record("p", "k", decision, False)
    assert learner.threshold == pytest.approx(0.97)  # the wrong ambiguous outcome is apart
    assert learner.stats().judged_wrong == 1
    assert (learner.stats().ambiguous, learner.stats().ambiguous_wrong) == (1, 1)
    assert policy(0.02, ambiguity=0.0).decide("p", "k", 0.98, runner_up=0.98).ambiguous is False


def test_a_pair_equivalent_by_rule_is_served_cold_until_a_wrong_outcome() -> None:
    cold = policy(0.02)
    assert cold.decide("p", "k", 0.81, equivalent=True).action == "serve"
    assert cold.stats().served_by_rule == 1
    assert cold.decide("p", "k", 0.81).action == "verify"
    assert cold.decide("p", "k", 0.5, equivalent=True).action == "miss"  # the floor holds
    cold.record("p", "other", 0.9, False)  # the stream shows the rules are not enough
    assert cold.decide("p", "k", 0.81, equivalent=True).action == "verify"
    # An ambiguous candidate judged wrong counts too (the rules let it through).
    other = policy(0.02)
    decision = other.decide("p", "a", 0.9, runner_up=0.89)
    other.record("p", "a", decision, False)
    assert other.decide("p", "k", 0.81, equivalent=True).action == "verify"


def test_answers_served_by_rule_are_sampled_by_exploration() -> None:
    # What is served by rule sits below any threshold: its explored outcomes must still count
    # as samples of what is served (the estimated error rate), and end the rule's trust.
    cold = policy(0.02, explore=1.0, explore_floor=1.0)  # every servable candidate explored
    decision = cold.decide("p", "k", 0.81, equivalent=True)
    assert (decision.action, decision.exploring, decision.by_rule) == ("verify", True, True)
    cold.record("p", "k", decision, False)
    stats = cold.stats()
    assert (stats.explored, stats.explored_wrong, stats.estimated_error_rate) == (1, 1, 1.0)
    assert cold.decide("p", "k2", 0.81, equivalent=True).by_rule is False


def test_wrong_outcomes_refute_an_optimistic_prior_and_stop_serving() -> None:
    # Opt-in: the old static default as pseudo-outcomes (340 at 0.91, 0.5% wrong).
    learner = policy(0.02, prior=Prior())
    assert learner.threshold is not None
    assert 0.9 <= learner.threshold <= 0.91
    for _ in range(40):
        decision = learner.decide("p", "k", 0.95)
        learner.record("p", "k", decision, False)
    assert learner.prior_refuted
    assert learner.threshold is None
    assert learner.decide("p", "other", 0.99).action != "serve"


def test_wrong_outcomes_keep_a_cold_index_from_serving() -> None:
    learner = proven(policy(0.02), 0.97, 200)
    for number in range(10):
        learner.record("p", f"bad-{number}", 0.98, False)
    assert learner.threshold is None  # 10 of 210 wrong: 4.8%, over the bound


def test_right_outcomes_lower_the_threshold() -> None:
    learner = proven(policy(0.05), 0.95, 200)
    start = learner.threshold
    assert start is not None
    proven(learner, 0.86, 400)
    assert learner.threshold is not None
    assert learner.threshold < start
    assert learner.decide("p", "new", 0.87).action in ("serve", "verify")


def test_one_entry_judged_wrong_stops_serving_at_and_below_that_similarity() -> None:
    learner = policy(0.05)
    for number in range(600):
        learner.record("p", f"k{number}", 0.93, True)
    learner.record("p", "bad", 0.96, False)
    assert all(learner.decide("p", "bad", 0.95).action != "serve" for _ in range(20))
    others = [learner.decide("p", "good", 0.95).action for _ in range(20)]
    assert others.count("serve") >= 15  # another entry at the same similarity is served
    # Its neighbours more similar than the wrong one are still served.
    served = [learner.decide("p", "bad", 0.99).action for _ in range(20)]
    assert served.count("serve") >= 15


def test_forgetting_an_entry_drops_its_own_evidence() -> None:
    learner = policy(0.05)
    learner.record("p", "bad", 0.96, False)
    assert learner.stats().entries == 1
    learner.forget(["bad"])
    assert learner.stats().entries == 0


def test_exploration_is_bounded_and_decays() -> None:
    learner = proven(policy(0.02, explore=0.2, explore_floor=0.01, explore_scale=100), 0.97, 300)
    early = [learner.decide("p", "k", 0.97).action for _ in range(100)]
    # The deterministic credit: 0.2 * sqrt(100 / 400) = 0.1 a candidate (9.99... in floats).
    assert early.count("verify") in (9, 10)
    for number in range(10_000):
        learner.record("p", f"k{number}", 0.97, True)
    late = [learner.decide("p", "k", 0.97).action for _ in range(1000)]
    assert late.count("verify") < 30  # 0.2 * sqrt(100 / 10,100) ~ 2%
    assert late.count("verify") >= 10  # never below the floor


def test_a_seeded_draw_replays_identically() -> None:
    def run() -> list[str]:
        learner = ErrorBoundPolicy(random_draw=random.Random(3).random)
        return [learner.decide("p", "k", 0.95).action for _ in range(200)]

    assert run() == run()


def test_stats_report_the_decisions_and_the_explored_estimate() -> None:
    learner = proven(policy(0.02, explore=1.0, explore_floor=1.0), 0.97, 200)
    decision = learner.decide("p", "k", 0.97)
    assert decision.exploring
    assert decision.action == "verify"
    learner.record("p", "k", decision, False)
    stats = learner.stats()
    assert (stats.candidates, stats.verified, stats.judged, stats.judged_wrong) == (1, 1, 201, 1)
    assert (stats.explored, stats.explored_wrong) == (1, 1)
    assert stats.estimated_error_rate == 1.0
    assert stats.error_rate_interval is not None
    assert stats.exploration_rate == 1.0
    assert stats.as_dict()["served"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_error_rate", 0),
        ("max_error_rate", 0.9),
        ("max_error_rate", "2%"),
        ("confidence", 1.0),
        ("explore", -0.1),
        ("floor", True),
        ("probation", -1),
        ("probation", 2.5),
        ("ambiguity", 1.5),
    ],
)
def test_bad_settings_name_their_field(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=field):
        ErrorBoundSettings(**{field: value})  # type: ignore[arg-type]


def test_a_bad_verdict_is_refused_and_nothing_is_learned() -> None:
    learner = policy()
    before = learner.threshold
    with pytest.raises(InvalidArgumentError, match="correct"):
        learner.record("p", "k", 0.95, "yes")  # type: ignore[arg-type]
    assert learner.stats().judged == 0
    assert learner.threshold == before


def test_a_prior_without_weight_starts_from_nothing() -> None:
    learner = policy(0.05, prior=Prior(weight_above=0.0, weight_below=0.0))
    assert learner.threshold is None


def test_judge_helpers() -> None:
    assert normalized("  The ANSWER: 42! ") == "the answer 42"
    assert parse_verdict("Yes.")
    assert parse_verdict("YES")
    assert not parse_verdict("No")
    assert not parse_verdict("I think yes")
