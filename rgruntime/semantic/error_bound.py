"""Serve a match by meaning only while its chance of being wrong is known to be within a bound.

Pure and synchronous (no I/O, no clock): the caller owns one :class:`ErrorBoundPolicy` per
semantic index, bound and judge (:mod:`rgruntime.semantic.judged_policies`: what one judge calls
right never teaches another's agents) and asks it, for each candidate match that passed the
lexical check, what to do:

- ``"serve"``: the evidence says that answers served at this similarity are wrong at most
  ``max_error_rate`` of the time: their judged outcomes prove it at ``confidence`` (95% by
  default) with a test that stays valid however often it is repeated
  (:func:`anytime_proves_within`), or none of a long enough run of them was wrong (probation);
- ``"verify"``: the evidence is not conclusive, or this is an exploration draw: the caller runs the
  request as a miss, returns the fresh answer, asks a judge whether the cached answer would have
  been right, and reports the outcome with :meth:`ErrorBoundPolicy.record`;
- ``"miss"``: the evidence says matches this far are too often wrong; not even worth judging.

**Evidence, three levels.** Each judged outcome (similarity, right or wrong) is counted for its
cached entry, for its partition and for the whole index (every partition judged by the same
judge: the outcomes of other partitions teach how far this *embedder* and *verifier* can be
trusted; no entry, text or answer crosses a partition).

**A cold index starts on probation, precision first.** Until judged outcomes vouch for a
similarity, every candidate at or above the floor is verified (it would be a miss anyway:
judging it costs the judge, not a hit). A similarity is served once its tail (every judged
outcome at it or above) holds ``probation`` outcomes (100) and *none of them is wrong*; the
first wrong one ends the probation below it, and from then on only a proof opens a similarity
(with no wrong outcome it proves 2% from 224 right ones, 1% from 449, 5% from 88; each wrong one
adds more: one wrong in 134 proves 5%; never from fewer than ``probation``). The proof is
re-tested after every outcome, so it is one that stays valid when re-tested (Robbins' mixture,
:func:`anytime_proves_within`): the Wilson interval it replaced, asked after every outcome, took
lucky early stretches of the repeated-origin QQP streams for proof of 5% (over 10 orders of the
tuning split, 18 of 30 replays then failed the acceptance's error line; 3 of 30 now).

Why a probation: against the static thresholds (chosen with hindsight) a learner that must prove
2% on a few hundred requests loses its whole proving period; served with no wrong answer it only
has to match the most accurate static threshold. Its price: for one similarity, 100 right
outcomes in a row from a stream wrong 5% of the time happen with probability 0.95^100 = 0.6%
(2%: 13%); re-tested at every similarity after every outcome, simulated streams 2% wrong opened
61% of the time, 3% wrong 18-25% (docs/semantic.md), and are then served at their own rate until
an exploration draw finds a wrong answer. Why not the old optimistic start (an opt-in
:class:`Prior`): on QQP every static threshold serves 5-24% wrong answers, and a prior vouching
for 0.91 served 30-255 requests 9-16% wrong before exploration refuted it.

**Ambiguous candidates are verified apart.** When another cached entry with another answer is
within ``ambiguity`` (0.045) of the candidate, the query may be asking either: the candidate is
verified, never served, and its outcome kept out of the evidence (it says nothing about clear
matches). A static threshold cannot see this; on GPTCache's paraphrases most wrong matches are
such near ties.

**Pairs equivalent by rule.** When the verifier finds the two texts the same question by rule
(:attr:`~rgruntime.semantic.verify.Verdict.equivalent`: an implicit-default qualifier such as
"today" in a present-tense question is all they differ in), the candidate is served while
nothing the lexical check let through on this index was ever judged wrong (and its entry was
not judged wrong at that similarity); after the first wrong outcome such pairs are verified like
any other. This is what makes the guide's pair a hit on a cold index.

**The decision** (why a threshold is still learned, and why per level):

1. *The index's threshold.* The promise is about the answers served: among all served at
   similarity ``s`` or more, at most ``max_error_rate`` wrong. So the index learns the lowest
   similarity ``t`` that holds judged outcomes and whose tail (all outcomes at ``t`` or above,
   pooled over entries and partitions) has an upper confidence bound within the bound, and
   serves candidates at ``t`` or above. Outcomes below ``t`` are those
   verified while uncertain; above ``t``, those of exploration draws: both are unbiased samples of
   their similarity, and the tail mixes in the lower, riskier ones first, so it errs safe.
2. *The partition and the entry can only be stricter* (they hold too few outcomes to be trusted
   alone): their own tail's error, shrunk towards the index's estimate (``partition_weight``,
   ``entry_weight`` pseudo-outcomes), must stay within the bound. One wrong judgement of an entry
   at 0.95 stops it serving at 0.95 and below until right ones outweigh it: that entry has learned
   that its neighbours often need another answer.
3. *Misses that are not worth judging.* Where the outcomes around ``s`` (a band of ``band`` on
   either side, prior included) are wrong more often than the bound even at their lower
   confidence limit, the candidate is a plain miss.

**Exploration is bounded and decays.** A candidate that may be served is still verified with
probability ``explore * sqrt(explore_scale / (explore_scale + n))`` (``n``: real outcomes in the
index's tail at that similarity), never below ``explore_floor``: the estimate keeps being tested
where it is used, less and less as it firms up. A candidate in the "miss" region is verified with
probability ``explore_floor`` (the region may have moved). Uncertain candidates are always
verified: they would be misses anyway, so judging them costs the judge, not a hit.

**Limits** (see docs/semantic.md): the bound holds for outcomes like those already seen (a stream
whose near misses suddenly change kind is served at the old rate until judged outcomes catch up);
the proof holds over time for each similarity, but is not corrected for testing the ~50
similarities above the floor (their tails are nested, so the correction would cost far more than
it buys); the probation is a rule, not a proof; the judge is taken as the truth.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Final, Literal

import attrs

from rgruntime.errors import InvalidArgumentError

__all__ = [
    "BINS",
    "Decision",
    "ErrorBoundPolicy",
    "ErrorBoundSettings",
    "ErrorBoundStats",
    "Evidence",
    "Prior",
    "anytime_proves_within",
    "wilson_interval",
]

#: Similarity is counted in bins of 0.005 over [0, 1].
BINS: Final = 200

Action = Literal["serve", "verify", "miss"]


def _bin(similarity: float) -> int:
    return min(max(int(similarity * BINS), 0), BINS - 1)


def _z(confidence: float) -> float:
    """The standard normal quantile of ``confidence`` (e.g. 0.95 -> 1.645, 0.975 -> 1.96)."""
    # Acklam's rational approximation is overkill here: bisection on erf is exact enough and
    # runs once per policy.
    low, high = 0.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < confidence:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def wilson_interval(wrong: float, total: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``wrong / total`` (``(0, 1)`` when empty)."""
    if total <= 0:
        return 0.0, 1.0
    p = min(max(wrong / total, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@functools.lru_cache(maxsize=4096)
def _log_mixture(wrong: int, total: int, bound: float) -> float:
    """The log of Robbins' mixture likelihood ratio for ``wrong`` of ``total`` outcomes: the
    likelihood of each error rate ``q`` below ``bound``, relative to ``bound`` itself, averaged
    over ``q`` uniform on ``[0, bound]``.

    Closed form: ``(1/b) * b^-w * (1-b)^-(n-w) * B(w+1, n-w+1) * I_b(w+1, n-w+1)``, where the
    regularized incomplete beta of whole arguments is a binomial tail,
    ``I_b(w+1, n-w+1) = P(Binomial(n+1, b) > w)``. Called only with ``w / n < b``: the
    binomial's mean is then above ``w``, so its terms grow from ``k = 0`` to ``k = w``, and
    ``P(... <= w)`` is summed from ``k = w`` down, each term from the one above, until they stop
    mattering: about the square root of ``n * b`` terms at most, however large ``w`` is (an index
    that judged 10^6 outcomes must not stall the event loop re-learning its threshold).
    """
    log_bound, log_rest = math.log(bound), math.log1p(-bound)
    trials = total + 1
    log_term = (
        math.lgamma(trials + 1)
        - math.lgamma(wrong + 1)
        - math.lgamma(trials - wrong + 1)
        + wrong * log_bound
        + (trials - wrong) * log_rest
    )
    # sum over k <= w of P(k) / P(w); P(k - 1) / P(k) = k (1 - b) / ((n + 2 - k) b).
    odds = (1 - bound) / bound
    ratio_sum, term = 1.0, 1.0
    for k in range(wrong, 0, -1):
        term *= k * odds / (trials - k + 1)
        ratio_sum += term
        if term < 1e-17 * ratio_sum:
            break
    below = math.exp(log_term) * ratio_sum
    tail = 1.0 - below
    if tail <= 0.0:
        return -math.inf
    log_beta = math.lgamma(wrong + 1) + math.lgamma(total - wrong + 1) - math.lgamma(total + 2)
    return -log_bound * (wrong + 1) - (total - wrong) * log_rest + log_beta + math.log(tail)


def anytime_proves_within(wrong: float, total: float, bound: float, alpha: float) -> bool:
    """Whether ``wrong`` of ``total`` judged outcomes prove an error rate below ``bound`` at
    level ``alpha``, *however often the question was asked before*.

    A Wilson interval asked after every new outcome is eventually fooled: re-tested often
    enough, a stream wrong slightly more often than the bound has a lucky stretch that "proves"
    it. Robbins' mixture (:func:`_log_mixture`) is a nonnegative supermartingale while the true
    rate is ``bound`` or more, so by Ville's inequality the chance that it *ever* reaches
    ``1 / alpha`` is at most ``alpha``: the proof stays valid when re-tested after each outcome.
    Its price against a one-off Wilson interval (two-sided 95%) is about a fifth more outcomes:
    with none wrong, 224 instead of 189 prove 2%, 88 instead of 73 prove 5%. Fractional counts
    (an opt-in :class:`Prior`) are rounded the cautious way.
    """
    whole_wrong, whole_total = math.ceil(wrong), math.floor(total)
    # At an observed rate of ``bound`` or more every q below it is less likely than ``bound``
    # itself: the mixture cannot exceed 1.
    if whole_total <= 0 or whole_wrong >= whole_total * bound:
        return False
    return _log_mixture(whole_wrong, whole_total, bound) >= -math.log(alpha)


class Evidence:
    """Judged outcomes by similarity bin: how many, and how many were wrong (floats: priors).

    Sparse (a dict of the bins that hold something): an entry judged twice holds two bins, not
    :data:`BINS`. Once it holds more than a few bins, its tails are summed once per change
    (:meth:`tails`) and read in O(1): the index's evidence is read at every decision.
    """

    __slots__ = ("_bins", "_tails", "count")

    #: Up to this many bins a tail is summed on the spot (cheaper than keeping 2 x 201 sums).
    SPARSE_BINS: Final = 16

    def __init__(self) -> None:
        # bin -> [outcomes, wrong ones]
        self._bins: dict[int, list[float]] = {}
        self._tails: tuple[list[float], list[float]] | None = None
        self.count = 0.0

    def add(self, similarity: float, correct: bool, weight: float = 1.0) -> None:
        counts = self._bins.get(_bin(similarity))
        if counts is None:
            counts = self._bins[_bin(similarity)] = [0.0, 0.0]
        counts[0] += weight
        if not correct:
            counts[1] += weight
        self.count += weight
        self._tails = None

    def _sum(self, start: int, end: int) -> tuple[float, float]:
        if len(self._bins) > self.SPARSE_BINS:
            totals, wrongs = self.tails()
            return totals[start] - totals[end], wrongs[start] - wrongs[end]
        total = wrong = 0.0
        for index, counts in self._bins.items():
            if start <= index < end:
                total += counts[0]
                wrong += counts[1]
        return total, wrong

    def tail(self, similarity: float) -> tuple[float, float]:
        """(outcomes, wrong ones) at ``similarity``'s bin or above."""
        return self._sum(_bin(similarity), BINS)

    def band(self, similarity: float, width: float) -> tuple[float, float]:
        """(outcomes, wrong ones) within ``width`` of ``similarity``."""
        return self._sum(_bin(similarity - width), _bin(similarity + width) + 1)

    def tails(self) -> tuple[list[float], list[float]]:
        """Every bin's tail at once (outcomes, wrong ones); index ``BINS`` holds zeros."""
        if self._tails is None:
            totals, wrongs = [0.0] * (BINS + 1), [0.0] * (BINS + 1)
            for index in range(BINS - 1, -1, -1):
                counts = self._bins.get(index, (0.0, 0.0))
                totals[index] = totals[index + 1] + counts[0]
                wrongs[index] = wrongs[index + 1] + counts[1]
            self._tails = (totals, wrongs)
        return self._tails


@attrs.frozen(kw_only=True)
class Prior:
    """An optimistic start (opt-in, ``ErrorBoundSettings(prior=Prior())``): the old static
    default written as pseudo-outcomes, so that a cold index serves like the static mode.

    ``weight_above`` outcomes spread evenly from ``threshold`` to 1 with ``error_above`` of them
    wrong, ``weight_below`` from ``floor`` to ``threshold`` with ``error_below`` wrong. With the
    defaults a cold index serves, at a bound of 2%, what the static mode serves at 0.91 (verified);
    at 1% it serves nothing until outcomes are judged; real outcomes outweigh it after a few
    hundred judgements.
    """

    threshold: float = 0.91
    #: The least weight whose interval's upper end at 0.5% wrong is within 2% (1.98%).
    weight_above: float = 340.0
    error_above: float = 0.005
    weight_below: float = 60.0
    error_below: float = 0.25

    def seed(self, evidence: Evidence, floor: float) -> None:
        # The belief "served from ``threshold`` up, ``error_above`` wrong" sits in the one bin
        # at the threshold: every tail that includes the threshold carries it whole, so a real
        # wrong outcome anywhere above counts against all of it at once (spread evenly instead,
        # the upper bins kept vouching for themselves until each saw its own wrong outcomes).
        evidence.add(self.threshold, True, self.weight_above * (1 - self.error_above))
        evidence.add(self.threshold, False, self.weight_above * self.error_above)
        first, last = _bin(floor), _bin(self.threshold) - 1
        bins = last - first + 1
        if bins <= 0 or self.weight_below <= 0:
            return
        for index in range(first, last + 1):
            centre = (index + 0.5) / BINS
            evidence.add(centre, True, self.weight_below * (1 - self.error_below) / bins)
            evidence.add(centre, False, self.weight_below * self.error_below / bins)


def _unit(field: str, value: object, low: float, high: float, *, open_low: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (low < value if open_low else low <= value)
        or not value <= high
    ):
        interval = f"{'(' if open_low else '['}{low}, {high}]"
        raise InvalidArgumentError(field, value, f"a number in {interval}")
    return float(value)


@attrs.frozen(kw_only=True)
class ErrorBoundSettings:
    """The knobs of :class:`ErrorBoundPolicy` (validated: a bad value names its field)."""

    max_error_rate: float = 0.02
    confidence: float = 0.95
    #: Candidates less similar than this are misses, never judged.
    floor: float = 0.75
    band: float = 0.02
    partition_weight: float = 20.0
    entry_weight: float = 4.0
    explore: float = 0.1
    explore_floor: float = 0.01
    explore_scale: float = 200.0
    #: None: a cold index serves only what real outcomes vouch for (see ``probation``).
    prior: Prior | None = None
    #: Probation: the least number of judged outcomes in a similarity's tail before it is
    #: served; with none of them wrong they suffice, else they must prove the bound
    #: (:func:`anytime_proves_within`; 0: the proof alone). See the module.
    probation: int = 100
    #: A candidate whose runner-up (another cached entry with another answer) is less than this
    #: far below it is ambiguous: always verified, its outcome kept apart (0: off).
    ambiguity: float = 0.045

    def __attrs_post_init__(self) -> None:
        _unit("max_error_rate", self.max_error_rate, 0.0, 0.5, open_low=True)
        _unit("confidence", self.confidence, 0.5, 0.999)
        for name in ("floor", "explore", "explore_floor", "ambiguity"):
            _unit(name, getattr(self, name), 0.0, 1.0)
        count = self.probation
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgumentError("probation", count, "a whole number >= 0 (0: off)")


@attrs.frozen
class Decision:
    """What to do with one candidate, and why (the estimates it was decided on)."""

    action: Action
    similarity: float
    #: The index's learned threshold at the time.
    threshold: float | None
    #: The estimated chance that this candidate's answer is wrong, and its upper bound.
    error: float
    upper: float
    #: True when the action is an exploration draw (verify where serving was allowed, or where a
    #: miss was certain).
    exploring: bool = False
    #: True when another cached answer was nearly as similar (always verified, learned apart).
    ambiguous: bool = False
    #: True when served (or explored) because the verifier found the texts the same question
    #: by rule, not because of the evidence at its similarity.
    by_rule: bool = False


@attrs.frozen(kw_only=True)
class ErrorBoundStats:
    """What the policy decided and learned since it was made."""

    max_error_rate: float
    confidence: float
    candidates: int
    served: int
    verified: int
    missed: int
    judged: int
    judged_wrong: int
    #: Verifications of candidates that could have been served (exploration draws): an unbiased
    #: sample of what was served.
    explored: int
    explored_wrong: int
    #: The served answers' error rate as estimated from ``explored`` and its two-sided Wilson
    #: interval at ``confidence`` (None until something was explored).
    estimated_error_rate: float | None
    error_rate_interval: tuple[float, float] | None
    #: The model's expectation over what it served (mean of each served candidate's estimate).
    expected_error_rate: float | None
    #: Share of candidates that were verified (judged) instead of served or missed.
    exploration_rate: float
    threshold: float | None
    entries: int
    partitions: int
    #: Candidates verified because another cached answer was nearly as similar, and how many of
    #: them were judged wrong (kept apart from the evidence).
    ambiguous: int = 0
    ambiguous_wrong: int = 0
    #: Served because the verifier found the texts the same question by rule (cold trust).
    served_by_rule: int = 0
    #: Verified candidates whose judge failed (raised, or gave no True / False): nothing was
    #: learned from them, and the request was answered with its fresh result all the same.
    judge_failures: int = 0

    def as_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


class ErrorBoundPolicy:
    """Per-entry, per-partition and index-wide evidence, and the serve / verify / miss rule.

    ``random_draw`` draws the exploration (e.g. a seeded ``random.Random().random`` for a
    replay). Without it exploration is deterministic: each candidate adds its exploration chance
    to a credit, and a candidate is explored whenever the credit reaches 1 (exactly the chosen
    rate, no randomness to make a test or an incident hard to reproduce).
    """

    def __init__(
        self,
        settings: ErrorBoundSettings | None = None,
        *,
        random_draw: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ErrorBoundSettings()
        # Two-sided: the serving rule reads the same interval as the one a user (or the
        # acceptance) would put around the served answers' error rate.
        self._z = _z(1 - (1 - self.settings.confidence) / 2)
        self._draw = random_draw
        self._credit = {"serve": 0.0, "miss": 0.0}
        self._index = Evidence()
        if self.settings.prior is not None:
            self.settings.prior.seed(self._index, self.settings.floor)
        # Real outcomes only (the prior excluded): how much was learned, for exploration's decay.
        self._real = Evidence()
        self._partitions: dict[str, Evidence] = {}
        self._entries: dict[str, Evidence] = {}
        self._threshold: float | None = None
        self._stale = True
        self.prior_refuted = False
        self._candidates = self._served = self._verified = self._missed = 0
        self._judged = self._judged_wrong = self._explored = self._explored_wrong = 0
        self._ambiguous = self._ambiguous_wrong = self._served_by_rule = 0
        self._judge_failures = 0
        self._expected_sum = 0.0

    # -- deciding ------------------------------------------------------------------------------

    @property
    def threshold(self) -> float | None:
        """The lowest similarity the index serves at (None: nowhere yet)."""
        if self._stale:
            self._threshold = self._learned_threshold()
            self._stale = False
        return self._threshold

    def _learned_threshold(self) -> float | None:
        bound = self.settings.max_error_rate
        totals, wrongs = self._index.tails()
        real_totals, real_wrongs = self._real.tails()
        prior = self.settings.prior
        vouched = BINS if prior is None else _bin(prior.threshold)
        # The prior is a claim ("from its threshold up, about error_above wrong"); while the
        # real outcomes there are wrong more often than the bound itself, it is set aside and
        # the index decides on real outcomes alone (a lower confidence limit above the claim,
        # tried first, let a stream with 13% wrong there be served for hundreds of requests).
        real_total, real_wrong = real_totals[vouched], real_wrongs[vouched]
        self.prior_refuted = bool(real_total and real_wrong / real_total > bound)
        if prior is None or self.prior_refuted:
            vouched = BINS
        probation = self.settings.probation
        found: float | None = None
        # The lowest bin whose tail is within the bound; the scan stops at the floor. Below the
        # prior's threshold only real outcomes count: the prior vouches for the static default's
        # range, never for lower similarities. Only a bin that holds outcomes of its own can be
        # the threshold: the tail of an empty bin is that of the next bin up, and serving from
        # there would vouch for similarities nothing was ever judged at (133 right outcomes at
        # 0.97 would otherwise open everything down to the floor).
        for index in range(BINS - 1, _bin(self.settings.floor) - 1, -1):
            if index >= vouched:
                total, wrong, above = totals[index], wrongs[index], totals[index + 1]
            else:
                total, wrong, above = real_totals[index], real_wrongs[index], real_totals[index + 1]
            if total <= above:
                continue
            # No similarity is served on fewer than ``probation`` judged outcomes in its tail:
            # with none of them wrong they suffice (precision first), otherwise they must prove
            # the bound, re-tested after every outcome (at 5% that takes 88 right ones alone).
            # A tail that carries the prior is read with the Wilson interval its weight was
            # chosen for: the prior is a claim the user opted into, not outcomes re-tested.
            if total < probation:
                proven = False
            elif index >= vouched:
                proven = wilson_interval(wrong, total, self._z)[1] <= bound
            else:
                proven = anytime_proves_within(wrong, total, bound, 1 - self.settings.confidence)
            on_probation = (
                probation > 0 and real_totals[index] >= probation and real_wrongs[index] == 0
            )
            if proven or on_probation:
                found = index / BINS
        return found

    def _shrunk(self, evidence: Evidence, similarity: float, weight: float, rate: float) -> float:
        total, wrong = evidence.tail(similarity)
        return (wrong + weight * rate) / (total + weight)

    def decide(
        self,
        partition: str,
        key: str,
        similarity: float,
        runner_up: float | None = None,
        *,
        equivalent: bool = False,
    ) -> Decision:
        """What to do with the candidate ``key`` of ``partition`` found at ``similarity``;
        ``runner_up``: the similarity of the next entry that holds another answer, if any;
        ``equivalent``: the verifier found the two texts the same question by rule."""
        settings = self.settings
        self._candidates += 1
        threshold = self.threshold
        # At or above the learned threshold the index's estimate is that of everything it
        # serves (its tail from the threshold up: what the promise is about); below, the tail
        # from the candidate's own similarity.
        at = threshold if threshold is not None and similarity >= threshold else similarity
        total, wrong = self._index.tail(at)
        rate = wrong / total if total else 1.0
        upper = wilson_interval(wrong, total, self._z)[1]
        bound = settings.max_error_rate
        if similarity < settings.floor:
            return self._count(Decision("miss", similarity, threshold, rate, upper))
        if runner_up is not None and similarity - runner_up < settings.ambiguity:
            return self._count(
                Decision("verify", similarity, threshold, rate, upper, ambiguous=True)
            )
        estimate = self._estimate(partition, key, similarity, rate)
        servable = threshold is not None and similarity >= threshold and estimate <= bound
        by_rule = False
        if equivalent and not servable:
            servable, estimate = self._trusted_by_rule(key, similarity)
            by_rule = servable
        if servable:
            learned, _ = self._real.tail(similarity)
            scale = settings.explore_scale
            chance = max(
                settings.explore_floor, settings.explore * math.sqrt(scale / (scale + learned))
            )
            explores = self._explores("serve", chance)
            if not explores:
                self._expected_sum += estimate
                self._served_by_rule += by_rule
            action: Action = "verify" if explores else "serve"
            return self._count(
                Decision(
                    action,
                    similarity,
                    threshold,
                    estimate,
                    upper,
                    exploring=explores,
                    by_rule=by_rule,
                )
            )
        # Real outcomes only: the prior's pessimism below its threshold must not stop the
        # index from learning there.
        band_total, band_wrong = self._real.band(similarity, settings.band)
        if wilson_interval(band_wrong, band_total, self._z)[0] > bound:
            explores = self._explores("miss", settings.explore_floor)
            action = "verify" if explores else "miss"
            return self._count(
                Decision(action, similarity, threshold, estimate, upper, exploring=explores)
            )
        return self._count(Decision("verify", similarity, threshold, estimate, upper))

    def _estimate(self, partition: str, key: str, similarity: float, rate: float) -> float:
        """The index's rate, made only stricter by the partition's and the entry's tails."""
        settings = self.settings
        estimate = rate
        level = self._partitions.get(partition)
        if level is not None:
            estimate = max(
                estimate, self._shrunk(level, similarity, settings.partition_weight, rate)
            )
        entry = self._entries.get(key)
        if entry is not None:
            estimate = max(
                estimate, self._shrunk(entry, similarity, settings.entry_weight, estimate)
            )
        return estimate

    def _trusted_by_rule(self, key: str, similarity: float) -> tuple[bool, float]:
        """Whether a pair the verifier found the same question by rule may be served, and the
        estimate it is served on.

        Trusted while nothing the lexical check let through on this index was ever judged
        wrong (ambiguous candidates included): one wrong outcome shows that the rules are not
        enough on this stream, and from then on the rule's pairs are verified like any other
        candidate (on the QQP streams the first wrong candidate is among the first six). An
        entry judged wrong at this similarity or above is not trusted either.
        """
        total, wrong = self._real.tail(self.settings.floor)
        entry = self._entries.get(key)
        refuted = (
            wrong > 0
            or self._ambiguous_wrong > 0
            or (entry is not None and entry.tail(similarity)[1] > 0)
        )
        return not refuted, (wrong / total if total else 0.0)

    def _explores(self, region: str, chance: float) -> bool:
        if self._draw is not None:
            return self._draw() < chance
        credit = self._credit[region] + chance
        explored = credit >= 1.0
        self._credit[region] = credit - 1.0 if explored else credit
        return explored

    def _count(self, decision: Decision) -> Decision:
        if decision.action == "serve":
            self._served += 1
        elif decision.action == "verify":
            self._verified += 1
        else:
            self._missed += 1
        return decision

    # -- learning ------------------------------------------------------------------------------

    def judge_failed(self) -> None:
        """A verified candidate's judge failed: counted, nothing learned."""
        self._judge_failures += 1

    def record(self, partition: str, key: str, decision: Decision | float, correct: bool) -> None:
        """A judge's verdict on a verified candidate: would ``key``'s answer have been right?"""
        similarity = _unit(
            "similarity", decision.similarity if isinstance(decision, Decision) else decision, 0, 1
        )
        if not isinstance(correct, bool):
            raise InvalidArgumentError("correct", correct, "True or False")
        self._judged += 1
        self._judged_wrong += not correct
        if isinstance(decision, Decision) and decision.ambiguous:
            # Not a sample of what is served (ambiguous candidates never are): kept apart.
            self._ambiguous += 1
            self._ambiguous_wrong += not correct
            return
        if isinstance(decision, Decision) and decision.exploring:
            threshold = decision.threshold
            # A sample of what is served: at or above the threshold, or served by rule.
            if decision.by_rule or (threshold is not None and similarity >= threshold):
                self._explored += 1
                self._explored_wrong += not correct
        self._index.add(similarity, correct)
        self._real.add(similarity, correct)
        level = self._partitions.get(partition)
        if level is None:
            level = self._partitions[partition] = Evidence()
        level.add(similarity, correct)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = Evidence()
        entry.add(similarity, correct)
        self._stale = True

    def forget(self, keys: Iterable[str]) -> None:
        """Entries that left the cache: their own evidence goes (what it taught the index
        and its partition stays)."""
        for key in keys:
            self._entries.pop(key, None)

    # -- reporting -----------------------------------------------------------------------------

    def stats(self) -> ErrorBoundStats:
        explored, wrong = self._explored, self._explored_wrong
        two_sided = _z(1 - (1 - self.settings.confidence) / 2)
        return ErrorBoundStats(
            max_error_rate=self.settings.max_error_rate,
            confidence=self.settings.confidence,
            candidates=self._candidates,
            served=self._served,
            verified=self._verified,
            missed=self._missed,
            judged=self._judged,
            judged_wrong=self._judged_wrong,
            explored=explored,
            explored_wrong=wrong,
            estimated_error_rate=wrong / explored if explored else None,
            error_rate_interval=wilson_interval(wrong, explored, two_sided) if explored else None,
            expected_error_rate=self._expected_sum / self._served if self._served else None,
            exploration_rate=self._verified / self._candidates if self._candidates else 0.0,
            threshold=self.threshold,
            entries=len(self._entries),
            partitions=len(self._partitions),
            ambiguous=self._ambiguous,
            ambiguous_wrong=self._ambiguous_wrong,
            served_by_rule=self._served_by_rule,
            judge_failures=self._judge_failures,
        )
