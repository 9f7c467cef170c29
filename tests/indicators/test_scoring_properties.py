"""Properties of the incentive engine (spec section 2) that must hold for any valid terms."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from indicators.scoring import (
    IncentiveTerms,
    IndicatorResult,
    IndicatorTerms,
    incentive_compute,
    tier_payout,
)

D = Decimal

scores = st.decimals(min_value=D(0), max_value=D(100), places=3, allow_nan=False)
pools = st.integers(min_value=0, max_value=100_000_000).map(lambda cents: D(cents) / 100)
policies = st.sampled_from(["redistribute", "zero", "hold_harmless"])
modes = st.sampled_from(["step", "linear"])


def split_100(parts: int, draw) -> list[Decimal]:
    """Positive weights in hundredths of a percent that sum to exactly 100."""
    cuts = sorted(
        draw(st.lists(st.integers(1, 9999), min_size=parts - 1, max_size=parts - 1, unique=True))
    )
    bounds = [0, *cuts, 10_000]
    return [D(b - a) / 100 for a, b in zip(bounds, bounds[1:], strict=False)]


@st.composite
def indicator_terms(draw, key: str, weight: Decimal) -> IndicatorTerms:
    direction = draw(st.sampled_from(["higher_is_better", "lower_is_better"]))
    cuts = sorted(draw(st.lists(scores, min_size=3, max_size=3, unique=True)))
    if direction == "lower_is_better":
        cuts.reverse()
    payouts = sorted(draw(st.lists(st.integers(0, 100), min_size=3, max_size=3)))
    return IndicatorTerms.standard(
        key=key,
        name=key,
        direction=direction,
        weight=weight,
        threshold=cuts[0],
        target=cuts[1],
        stretch=cuts[2],
        payouts=[D(p) for p in payouts],
        minimum_denominator=draw(st.none() | st.integers(0, 30)),
    )


@st.composite
def programmes(draw):
    count = draw(st.integers(1, 6))
    weights = split_100(count, draw)
    assert sum(weights, D(0)) == 100
    indicators = [draw(indicator_terms(f"i{n}", w)) for n, w in enumerate(weights)]
    results = [
        IndicatorResult(
            key=i.key,
            score=draw(st.none() | scores),
            denominator=draw(st.none() | st.integers(0, 40)),
        )
        for i in indicators
    ]
    terms = IncentiveTerms(
        pool=draw(pools), tier_mode=draw(modes), small_denominator_policy=draw(policies)
    )
    return terms, indicators, results


@settings(max_examples=200, deadline=None)
@given(programmes())
def test_earned_never_exceeds_the_pool_and_parts_sum_to_the_total(programme):
    terms, indicators, results = programme
    result = incentive_compute(terms=terms, indicators=indicators, results=results)
    assert D(0) <= result.earned_total <= terms.pool
    assert sum((o.earned for o in result.indicators), D(0)) == result.earned_total
    assert all(o.earned >= 0 for o in result.indicators)
    assert all(D(0) <= o.payout_pct <= D(100) for o in result.indicators)
    assert result.earned_total == result.earned_total.quantize(D("0.01"))


@settings(max_examples=200, deadline=None)
@given(programmes(), st.randoms(use_true_random=False))
def test_totals_do_not_depend_on_indicator_order(programme, random):
    terms, indicators, results = programme
    order = list(range(len(indicators)))
    random.shuffle(order)
    first = incentive_compute(terms=terms, indicators=indicators, results=results)
    second = incentive_compute(
        terms=terms,
        indicators=[indicators[i] for i in order],
        results=[results[i] for i in reversed(order)],
    )
    assert first.earned_total == second.earned_total
    assert first.weighted_payout_sum == second.weighted_payout_sum
    by_key = {o.key: o for o in second.indicators}
    for outcome in first.indicators:
        twin = by_key[outcome.key]
        assert (outcome.status, outcome.payout_pct) == (twin.status, twin.payout_pct)
        # Allocation ties aside, an indicator's share moves by at most a leftover cent.
        assert abs(outcome.earned - twin.earned) <= D("0.01")


@settings(max_examples=200, deadline=None)
@given(indicator_terms("x", D(100)), scores, scores, modes)
def test_payout_is_monotone_in_the_score_for_the_direction(indicator, a, b, mode):
    worse, better = sorted((a, b))
    if indicator.direction == "lower_is_better":
        worse, better = better, worse
    _, worse_payout = tier_payout(indicator=indicator, score=worse, tier_mode=mode)
    _, better_payout = tier_payout(indicator=indicator, score=better, tier_mode=mode)
    assert worse_payout <= better_payout


@settings(max_examples=200, deadline=None)
@given(programmes())
def test_linear_never_pays_less_than_step(programme):
    _, indicators, results = programme
    for indicator, result in zip(indicators, results, strict=True):
        if result.score is None:
            continue
        _, step = tier_payout(indicator=indicator, score=result.score, tier_mode="step")
        _, linear = tier_payout(indicator=indicator, score=result.score, tier_mode="linear")
        assert step <= linear <= D(100)
