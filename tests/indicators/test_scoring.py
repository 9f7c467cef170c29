"""The incentive engine against spec section 2 and example C."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from comanage.core.money import FloatMoneyError
from indicators.scoring import (
    IncentiveTerms,
    IndicatorResult,
    IndicatorTerms,
    TermsInvalid,
    Tier,
    incentive_compute,
    terms_validate,
    tier_payout,
    year_to_date_projection,
)

D = Decimal
POOL = D("400000.00")


def example_c_indicators() -> list[IndicatorTerms]:
    return [
        IndicatorTerms.standard(
            key="ssi", name="SSI after joint replacement %", direction="lower_is_better",
            weight=D(25), threshold=D("1.8"), target=D("1.4"), stretch=D("1.0"),
        ),
        IndicatorTerms.standard(
            key="los", name="Median length of stay, days", direction="lower_is_better",
            weight=D(20), threshold=D("2.2"), target=D("2.0"), stretch=D("1.8"),
        ),
        IndicatorTerms.standard(
            key="px", name="Patient experience top-box %", direction="higher_is_better",
            weight=D(20), threshold=D(75), target=D(80), stretch=D(85),
        ),
        IndicatorTerms.standard(
            key="vte", name="VTE prophylaxis %", direction="higher_is_better",
            weight=D(20), threshold=D(90), target=D(95), stretch=D(98), minimum_denominator=10,
        ),
        IndicatorTerms.standard(
            key="readmit", name="30-day readmission %", direction="lower_is_better",
            weight=D(15), threshold=D(8), target=D(6), stretch=D(4), minimum_denominator=25,
        ),
    ]  # fmt: skip


def example_c_results() -> list[IndicatorResult]:
    return [
        IndicatorResult(key="ssi", score=D("1.2")),
        IndicatorResult(key="los", score=D("1.9")),
        IndicatorResult(key="px", score=D("86.0")),
        # Example D's 12 ÷ 13, unrounded, as the patient-level engine produces it.
        IndicatorResult(key="vte", score=D(12) * 100 / D(13), denominator=13),
        IndicatorResult(key="readmit", score=D("5.5"), denominator=18),
    ]


def compute(policy: str, mode: str = "step"):
    return incentive_compute(
        terms=IncentiveTerms(pool=POOL, tier_mode=mode, small_denominator_policy=policy),
        indicators=example_c_indicators(),
        results=example_c_results(),
    )


def earned(result) -> list[Decimal]:
    return [o.earned for o in result.indicators]


def test_example_c_redistribute_shares_the_unscored_weight_among_the_scored():
    result = compute("redistribute")
    assert result.earned_total == D("300000.00")
    assert earned(result) == [
        D("88235.29"), D("70588.24"), D("94117.65"), D("47058.82"), D("0.00"),
    ]  # fmt: skip
    assert result.scored_weight == D(85)
    assert result.payout_divisor == D(8500)
    readmit = result.outcome("readmit")
    assert readmit.status == "insufficient_denominator"
    assert readmit.policy_applied == "redistribute"
    assert readmit.weight_used == 0
    assert result.outcome("ssi").weight_used == D(25) * 100 / D(85)


def test_example_c_zero_policy_pays_nothing_for_the_insufficient_indicator():
    result = compute("zero")
    assert result.earned_total == D("255000.00")
    assert sum(earned(result)) == D("255000.00")
    assert result.outcome("readmit").earned == D("0.00")
    assert result.outcome("readmit").policy_applied == "zero"
    assert result.unearned == D("145000.00")


def test_example_c_hold_harmless_pays_the_insufficient_indicator_its_target_payout():
    result = compute("hold_harmless")
    assert result.earned_total == D("300000.00")
    assert earned(result) == [
        D("75000.00"), D("60000.00"), D("80000.00"), D("40000.00"), D("45000.00"),
    ]  # fmt: skip
    readmit = result.outcome("readmit")
    assert readmit.payout_pct == D(75)
    assert readmit.policy_applied == "hold_harmless"


def test_example_c_tiers_and_vte_score():
    result = compute("redistribute")
    tiers = {o.key: (o.tier_met, o.payout_pct, o.status) for o in result.indicators}
    assert tiers["ssi"] == ("target", D(75), "scored")
    assert tiers["los"] == ("target", D(75), "scored")
    assert tiers["px"] == ("stretch", D(100), "scored")
    assert tiers["vte"] == ("threshold", D(50), "scored")
    assert tiers["readmit"] == (None, D(0), "insufficient_denominator")
    assert result.outcome("vte").display_score == D("92.31")
    assert result.outcome("vte").denominator == 13


def test_score_is_compared_unrounded():
    indicator = IndicatorTerms.standard(
        key="x", name="x", direction="higher_is_better", weight=D(100),
        threshold=D(90), target=D(95), stretch=D(98),
    )  # fmt: skip
    tier, payout = tier_payout(indicator=indicator, score=D("94.996"))
    assert (tier.name, payout) == ("threshold", D(50))
    tier, payout = tier_payout(indicator=indicator, score=D("95"))
    assert (tier.name, payout) == ("target", D(75))
    assert tier_payout(indicator=indicator, score=D("89.999")) == (None, D(0))


def test_lower_is_better_meets_a_tier_at_or_below_the_cut_point():
    indicator = example_c_indicators()[4]
    assert tier_payout(indicator=indicator, score=D(6))[1] == D(75)
    assert tier_payout(indicator=indicator, score=D("6.0001"))[1] == D(50)
    assert tier_payout(indicator=indicator, score=D("8.01"))[1] == D(0)
    assert tier_payout(indicator=indicator, score=D(0))[1] == D(100)


def test_linear_mode_interpolates_between_the_two_cut_points_of_the_spec_example():
    indicator = IndicatorTerms(
        key="x", name="x", direction="higher_is_better", weight=D(100),
        tiers=(Tier("threshold", D(85), D(50)), Tier("target", D(90), D(75)),
               Tier("stretch", D(95), D(100))),
    )  # fmt: skip
    assert tier_payout(indicator=indicator, score=D("92.5"), tier_mode="linear")[1] == D("87.5")
    assert tier_payout(indicator=indicator, score=D(96), tier_mode="linear")[1] == D(100)
    assert tier_payout(indicator=indicator, score=D("84.99"), tier_mode="linear")[1] == D(0)
    assert tier_payout(indicator=indicator, score=D(85), tier_mode="linear")[1] == D(50)


def test_linear_mode_works_for_lower_is_better():
    indicator = example_c_indicators()[1]  # LOS 2.2 / 2.0 / 1.8
    assert tier_payout(indicator=indicator, score=D("1.9"), tier_mode="linear")[1] == D("87.5")
    assert tier_payout(indicator=indicator, score=D("2.1"), tier_mode="linear")[1] == D("62.5")


def test_linear_example_c_total_uses_interpolated_payouts():
    result = compute("redistribute", mode="linear")
    payouts = {o.key: o.payout_pct for o in result.indicators}
    # SSI 1.2 halfway between 1.4 @75 and 1.0 @100; LOS 1.9 halfway between 2.0 and 1.8;
    # VTE 12/13 = 92.307..% between 90 @50 and 95 @75.
    assert payouts["ssi"] == D("87.5")
    assert payouts["los"] == D("87.5")
    assert payouts["px"] == D(100)
    expected_vte = D(50) + D(25) * (D(1200) / D(13) - D(90)) / D(5)
    assert payouts["vte"] == expected_vte
    assert sum(earned(result)) == result.earned_total <= POOL


def test_no_score_is_handled_like_an_insufficient_denominator():
    results = example_c_results()
    results[4] = IndicatorResult(key="readmit", score=None, denominator=0)
    for policy, total in (("redistribute", "300000.00"), ("zero", "255000.00"),
                          ("hold_harmless", "300000.00")):  # fmt: skip
        result = incentive_compute(
            terms=IncentiveTerms(pool=POOL, small_denominator_policy=policy),
            indicators=example_c_indicators(),
            results=results,
        )
        assert result.earned_total == D(total)
        assert result.outcome("readmit").status == "no_score"
        assert result.outcome("readmit").policy_applied == policy


def test_minimum_denominator_without_a_reported_denominator_is_insufficient():
    results = example_c_results()
    results[3] = IndicatorResult(key="vte", score=D(99), denominator=None)
    result = incentive_compute(
        terms=IncentiveTerms(pool=POOL), indicators=example_c_indicators(), results=results
    )
    assert result.outcome("vte").status == "insufficient_denominator"


def test_redistribute_with_nothing_scored_earns_nothing():
    results = [IndicatorResult(key=r.key, score=None) for r in example_c_results()]
    result = incentive_compute(
        terms=IncentiveTerms(pool=POOL), indicators=example_c_indicators(), results=results
    )
    assert result.earned_total == D("0.00")
    assert earned(result) == [D("0.00")] * 5
    assert result.notes


def test_it_refuses_missing_or_unknown_results():
    with pytest.raises(ValueError, match="no result for indicator"):
        incentive_compute(
            terms=IncentiveTerms(pool=POOL),
            indicators=example_c_indicators(),
            results=example_c_results()[:4],
        )
    with pytest.raises(ValueError, match="unknown indicator"):
        incentive_compute(
            terms=IncentiveTerms(pool=POOL),
            indicators=example_c_indicators(),
            results=[*example_c_results(), IndicatorResult(key="zzz", score=D(1))],
        )


def test_it_refuses_floats():
    with pytest.raises(FloatMoneyError):
        IncentiveTerms(pool=400000.0)
    with pytest.raises(FloatMoneyError):
        IndicatorResult(key="x", score=92.31)


def test_to_dict_is_json_serialisable_with_decimals_as_strings():
    data = compute("redistribute").to_dict()
    text = json.dumps(data)
    assert json.loads(text)["earned_total"] == "300000.00"
    vte = next(i for i in data["indicators"] if i["key"] == "vte")
    assert vte["display_score"] == "92.31"
    assert vte["earned"] == "47058.82"
    assert data["is_projection"] is False


def test_year_to_date_projection_is_flagged_and_treats_missing_results_as_no_score():
    results = example_c_results()[:4]  # readmission not reported yet
    projection = year_to_date_projection(
        terms=IncentiveTerms(pool=POOL),
        indicators=example_c_indicators(),
        results=results,
        as_of=dt.date(2025, 6, 30),
    )
    assert projection.is_projection
    assert projection.as_of == dt.date(2025, 6, 30)
    assert projection.earned_total == D("300000.00")
    assert projection.outcome("readmit").status == "no_score"
    assert projection.to_dict()["as_of"] == "2025-06-30"


# --- terms validation ---------------------------------------------------------------------


def test_it_refuses_weights_not_summing_to_100():
    indicators = example_c_indicators()[:4]  # 85
    errors = terms_validate(terms=IncentiveTerms(pool=POOL), indicators=indicators)
    assert [(e.indicator, e.field) for e in errors] == [(None, "weight")]
    assert "85" in errors[0].message
    with pytest.raises(TermsInvalid):
        incentive_compute(
            terms=IncentiveTerms(pool=POOL), indicators=indicators,
            results=example_c_results()[:4],
        )  # fmt: skip


def test_it_refuses_cut_points_out_of_order_for_the_direction():
    higher = IndicatorTerms.standard(
        key="px",
        name="px",
        direction="higher_is_better",
        weight=D(50),
        threshold=D(80),
        target=D(75),
        stretch=D(85),
    )
    lower = IndicatorTerms.standard(
        key="ssi", name="ssi", direction="lower_is_better", weight=D(50),
        threshold=D("1.0"), target=D("1.4"), stretch=D("1.8"),
    )  # fmt: skip
    errors = terms_validate(terms=IncentiveTerms(pool=POOL), indicators=[higher, lower])
    found = {(e.indicator, e.field) for e in errors}
    assert ("px", "tiers.target.cut_point") in found
    assert ("ssi", "tiers.target.cut_point") in found
    assert ("ssi", "tiers.stretch.cut_point") in found
    assert all("must be" in e.message for e in errors)


def test_it_refuses_payouts_outside_0_to_100_or_falling():
    bad = IndicatorTerms.standard(
        key="px", name="px", direction="higher_is_better", weight=D(100),
        threshold=D(75), target=D(80), stretch=D(85), payouts=(D(60), D(50), D(110)),
    )  # fmt: skip
    errors = terms_validate(terms=IncentiveTerms(pool=POOL), indicators=[bad])
    found = {(e.indicator, e.field) for e in errors}
    assert ("px", "tiers.stretch.payout_pct") in found
    assert ("px", "tiers.target.payout_pct") in found


def test_hold_harmless_needs_a_target_tier_and_keys_must_be_unique():
    no_target = IndicatorTerms(
        key="a", name="a", direction="higher_is_better", weight=D(50),
        tiers=(Tier("only", D(1), D(100)),),
    )  # fmt: skip
    twin = IndicatorTerms.standard(
        key="a", name="a2", direction="higher_is_better", weight=D(50),
        threshold=D(1), target=D(2), stretch=D(3),
    )  # fmt: skip
    errors = terms_validate(
        terms=IncentiveTerms(pool=POOL, small_denominator_policy="hold_harmless"),
        indicators=[no_target, twin],
    )
    found = {(e.indicator, e.field) for e in errors}
    assert ("a", "tiers") in found
    assert ("a", "key") in found


def test_valid_example_c_terms_have_no_errors():
    assert terms_validate(terms=IncentiveTerms(pool=POOL), indicators=example_c_indicators()) == []
