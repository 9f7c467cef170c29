"""The engine against the edge cases of spec section 4 ("Edge cases"), one rule at a time.

Each test quotes the spec line it checks. End-to-end counterparts (import, calculation,
stored result, flags, pages) are in ``test_services_edge_cases.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from savings.engine import KeyIndicatorOutcome, Opportunity, Participant, SavingsInputError
from tests.savings.test_engine import Case, cases, compute, opportunity, physician, terms, usage
from tests.savings.test_engine_columns import columns

D = Decimal
DAY = dt.date


def notes(result, rule: str) -> list[str]:
    return [n.text for n in result.rule_notes if n.rule == rule]


# --- Whose cases count ----------------------------------------------------------------------


def test_cases_before_joining_are_not_eligible_but_the_base_year_stays():
    """Spec 4 edge case: "A case belongs to its physician's participation only between the join
    date and the leave or termination date, inclusive: cases of a physician outside that window
    (before joining, after a voluntary leave, after termination) are not eligible in that year.
    The base year stays as identified at signing." """
    joiner = physician("N1", last_name="Chen", join_date=DAY(2025, 4, 1))
    base = usage(cases("b", 5, npi="N1", service_date="2024-05-01"))  # all before joining
    current = usage(
        cases("early", 2, npi="N1", service_date="2025-03-31")
        + cases("on", 1, npi="N1", service_date="2025-04-01")
        + cases("late", 2, npi="N1", service_date="2025-05-01")
    )
    result = compute(base=base, current=current, participants=[joiner])
    opp = result.opportunity("X")
    assert (opp.base_cases, opp.eligible_cases, opp.before_joining_cases) == (5, 3, 2)
    assert notes(result, "4.edge.whose-cases") == [
        "Dr Chen: 2 case(s) before joining on Apr 1, 2025 not eligible in 2025."
    ]


def test_cases_after_a_voluntary_leave_are_not_eligible_the_leave_day_still_counts():
    """Spec 4 edge case: "cases of a physician outside that window (before joining, after a
    voluntary leave, after termination) are not eligible in that year." (window inclusive)"""
    leaver = physician("N1", leave_date=DAY(2025, 6, 30))
    current = usage(
        cases("in", 2, npi="N1", service_date="2025-06-30")
        + cases("out", 3, npi="N1", service_date="2025-07-01")
    )
    result = compute(base=usage(cases("b", 4, npi="N1")), current=current, participants=[leaver])
    opp = result.opportunity("X")
    assert (opp.eligible_cases, opp.post_termination_cases) == (2, 3)


def test_year_n_minus_1_counts_only_cases_inside_the_window_for_the_reset():
    """Spec 4 edge case: "cases of a physician outside that window ... are not eligible in that
    year" applies to year N-1 too, whose eligible cases are the volume cap's base cases after a
    reset; "The base year stays as identified at signing." """
    people = [physician("N1"), physician("N2", leave_date=DAY(2025, 6, 30))]
    base = usage(cases("b", 4, npi="N2", service_date="2024-09-01"))
    prior = usage(
        cases("p1", 3, npi="N1", service_date="2025-03-01")
        + cases("p2", 2, npi="N2", service_date="2025-09-01")  # after N2 left
    )
    current = usage(cases("c", 3, npi="N1", service_date="2026-03-01"))
    result = compute(
        base=base,
        current=current,
        prior_usage=prior,
        participants=people,
        year_start=DAY(2026, 1, 1),
        year_end=DAY(2026, 12, 31),
    )
    opp = result.opportunity("X")
    assert (opp.original_base_cases, opp.base_cases) == (4, 3)


# --- One case, many rows --------------------------------------------------------------------


def test_a_case_is_dated_by_its_earliest_service_date():
    """Spec 4 edge case: "A case is dated by its earliest service date." (a case whose first row
    is before a termination date counts, even if a later row falls after it)"""
    terminated = physician("N1", termination_date=DAY(2025, 8, 15))
    frame = usage([Case("k", npi="N1", items=(("X1", "1", "50"), ("X1", "1", "50")))])
    frame.loc[0, "service_date"] = "2025-08-16"
    frame.loc[1, "service_date"] = "2025-08-10"
    base = usage(cases("b", 1, npi="N1"))
    for current in (frame, frame.iloc[::-1].reset_index(drop=True)):
        result = compute(base=base, current=current, participants=[terminated])
        assert result.opportunity("X").eligible_cases == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("case_type", "PCI"),
        ("physician_npi", "N2"),
        ("federal_program", "false"),
        ("notice_date", ""),
        ("opted_out", "true"),
    ],
)
@pytest.mark.parametrize("path", ["text", "columns"])
def test_rows_of_one_case_that_disagree_are_refused_naming_the_case(column, value, path):
    """Spec 4 edge case: "All rows of one case must agree on case type, physician, payer,
    federal flag, notice and opt-out; an import holding a case whose rows disagree is refused,
    naming the case and the rows." (the engine refuses too: it never guesses which row is right)"""
    frame = usage([Case("good"), Case("k-17", items=(("X1", "1", "50"), ("X1", "2", "50")))])
    frame.loc[2, column] = value
    current = frame if path == "text" else columns(frame)
    with pytest.raises(SavingsInputError, match=rf"case k-17 \({column}\)"):
        compute(
            base=usage(cases("b", 1)),
            current=current,
            participants=[physician("N1"), physician("N2")],
        )


# --- No base-year case ----------------------------------------------------------------------


def test_an_opportunity_with_no_base_year_case_cannot_earn_and_has_no_zero_baseline():
    """Spec 4 edge case: "Where the base year (or, after a reset, year N−1) has no eligible case
    of an opportunity, that opportunity cannot earn that year (flagged); it is never given a
    zero baseline." """
    hips = Opportunity(key="H", name="Hip implants", case_types=("HIP",), item_codes=("X1",))
    result = compute(
        base=usage(cases("b", 3)),  # CATH only
        current=usage(cases("c", 3, case_type="HIP")),
        opportunities=[opportunity("X"), hips],
    )
    opp = result.opportunity("H")
    assert opp.baseline_per_case is None and opp.baseline_source == "none"
    assert not opp.can_earn and opp.capped_savings == D("0.00")
    assert "no_base_cases" in [f.code for f in opp.flags]
    assert notes(result, "4.edge.no-base-case") == [
        "Hip implants: no eligible case in the base year, cannot earn in 2025."
    ]


def test_after_a_reset_no_eligible_case_in_year_n_minus_1_means_no_earning_and_no_threshold():
    """Spec 4 edge case: "Where the base year (or, after a reset, year N−1) has no eligible
    case of an opportunity, that opportunity cannot earn that year (flagged)" and "The threshold
    compares gross savings ... with the expected cost of the opportunities that can earn that
    year." """
    base = usage(cases("b", 2, items=(("X1", "1", "100"),), service_date="2024-03-01"))
    prior = usage(cases("p", 2, opted_out=True, service_date="2025-03-01"))  # none eligible
    current = usage(cases("c", 2, items=(("X1", "1", "90"),), service_date="2026-03-01"))
    result = compute(
        base=base,
        current=current,
        prior_usage=prior,
        year_start=DAY(2026, 1, 1),
        year_end=DAY(2026, 12, 31),
        prior_year_label="Year 1",
        year_label="Year 2",
        savings_terms=terms(min_savings_threshold_pct=D("5")),
    )
    opp = result.opportunity("X")
    assert not opp.can_earn and opp.counted_savings == D("0.00")
    assert result.total_expected_cost == D("0.00")
    assert result.min_savings_threshold_amount == D("0.00")
    assert notes(result, "4.edge.no-base-case") == [
        "Opportunity X: no eligible case in Year 1, cannot earn in Year 2."
    ]


# --- Reset without repricing ----------------------------------------------------------------


def test_reset_without_repricing_takes_the_lower_recorded_cost_neither_repriced():
    """Spec 4 edge case: "With `reprice_baseline=False`, year N's baseline per case is
    min(original recorded cost per case, year N−1 actual cost per case), neither repriced." """
    base = usage(cases("b", 2, items=(("X1", "2", "100"),)))  # 200.00 recorded per case
    prior = usage(cases("p", 2, items=(("X1", "1", "150"),), service_date="2025-05-01"))
    current = usage(cases("c", 2, items=(("X1", "1", "140"),), service_date="2026-05-01"))
    result = compute(
        base=base,
        current=current,
        prior_usage=prior,
        prices={"X1": D("10")},  # repricing would give 20.00 and 10.00 per case
        year_start=DAY(2026, 1, 1),
        year_end=DAY(2026, 12, 31),
        savings_terms=terms(reprice_baseline=False),
    )
    opp = result.opportunity("X")
    assert opp.original_baseline_per_case == D("200")
    assert opp.prior_year_per_case == D("150")
    assert (opp.baseline_source, opp.baseline_per_case) == ("prior_year", D("150"))
    assert opp.raw_savings == D("20.00")
    assert notes(result, "4.edge.reset-without-repricing") == [
        "Opportunity X: baseline per case 150.00 = the lower of the original recorded cost per"
        " case (200.00) and the prior programme year's actual cost per case (150.00), neither"
        " repriced."
    ]


# --- Fee months -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (DAY(2025, 1, 1), DAY(2025, 12, 31), 12),
        (DAY(2025, 1, 15), DAY(2026, 1, 14), 12),
        (DAY(2025, 1, 31), DAY(2026, 1, 30), 12),
        (DAY(2025, 1, 15), DAY(2025, 6, 20), 6),
        (DAY(2025, 1, 1), DAY(2025, 6, 20), 6),
        (DAY(2025, 7, 1), DAY(2025, 12, 31), 6),
    ],
)
def test_fee_months_twelve_whatever_the_start_day_one_per_started_month_in_a_short_year(
    start, end, months
):
    """Spec 4 edge case: "A programme year of twelve months carries twelve monthly fees,
    whatever day it starts on; a shorter year carries one fee per started month." """
    current = usage(cases("c", 1, service_date=start.isoformat()))
    result = compute(
        base=usage(cases("b", 1)),
        current=current,
        year_start=start,
        year_end=end,
        fee_months=None,
        savings_terms=terms(admin_fee_monthly=D("1000.00")),
    )
    assert result.fee_months == months
    assert result.admin_fees == D("1000.00") * months
    assert bool(notes(result, "4.edge.fee-months")) == (start.day != 1 or months != 12)


# --- Order of the split ---------------------------------------------------------------------


def _saving_20010(**kwargs):
    """Gross 200.10 (recorded baseline 300.10, actual 100.00), pool 100.05 at 50%."""
    return compute(
        base=usage(cases("b", 1, items=(("X1", "1", "300.10"),))),
        current=usage(cases("c", 1, items=(("X1", "1", "100.00"),))),
        **kwargs,
    )


def test_the_sliding_gate_rounds_half_up_then_the_cap_applies_to_the_gated_pool():
    """Spec 4 edge case: "Pool (rounded) → quality gate (`sliding`: pool × share of key
    indicators met, rounded half-up to cents) → distribution cap → per-capita split." """
    key = [
        KeyIndicatorOutcome(key="k1", name="SSI", met=True),
        KeyIndicatorOutcome(key="k2", name="Readmissions", met=False),
    ]
    result = _saving_20010(
        savings_terms=terms(
            reprice_baseline=False, quality_gate="sliding", distribution_cap=D("60.00")
        ),
        key_indicators=key,
        already_distributed=D("9.00"),
    )
    assert result.physician_pool == D("100.05")
    assert result.pool_after_quality_gate == D("50.03")  # 50.025 half-up, not half-even 50.02
    # The cap (51.00 left) applies after the gate: the gate's figure is paid in full.
    assert (result.cap_remaining_before, result.amount_paid) == (D("51.00"), D("50.03"))
    assert result.withheld_by_cap == D("0.00")
    assert notes(result, "4.edge.order-of-split") == [
        "Sliding quality gate: 1 of 2 key indicators met; pool 100.05 x 1/2 = 50.03 (rounded"
        " half-up to cents), before the distribution cap."
    ]


@pytest.mark.parametrize(("policy", "met"), [("net", False), ("floor_at_zero", True)])
def test_the_threshold_compares_gross_after_the_negative_policy(policy, met):
    """Spec 4 edge case: "The threshold compares gross savings after the
    `negative_opportunities` policy with the expected cost of the opportunities that can earn
    that year." """
    both = [opportunity("X", items=("X1",)), opportunity("Y", items=("Y1",))]
    base = usage(cases("b", 1, items=(("X1", "1", "1000"), ("Y1", "1", "1000"))))
    current = usage(cases("c", 1, items=(("X1", "1", "900"), ("Y1", "1", "1060"))))
    result = compute(
        base=base,
        current=current,
        opportunities=both,
        prices={"X1": D("1000"), "Y1": D("1000")},
        savings_terms=terms(negative_opportunities=policy, min_savings_threshold_pct=D("2.5")),
    )
    # Expected 2,000.00; threshold 50.00; gross 40.00 (net) or 100.00 (floor at zero).
    assert result.min_savings_threshold_amount == D("50.00")
    assert result.min_savings_threshold_met is met
    assert (result.amount_paid > 0) is met


# --- Nobody entitled ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "people",
    [
        [physician("N1", termination_date=DAY(2025, 12, 30), for_cause=True)],
        [physician("N1", leave_date=DAY(2025, 12, 30))],  # under leaver_policy forfeit
    ],
    ids=["all-terminated-for-cause", "all-forfeited"],
)
def test_nobody_entitled_pays_nothing_keeps_the_cap_and_raises_a_blocking_flag(people):
    """Spec 4 edge case: "When no physician is entitled to a share (all terminated for cause,
    or all forfeited), nothing is paid, the hospital keeps the pool, the cap is not consumed,
    and a blocking compliance flag says why." """
    result = _saving_20010(
        participants=people,
        savings_terms=terms(
            reprice_baseline=False, leaver_policy="forfeit", distribution_cap=D("1000.00")
        ),
        already_distributed=D("200.00"),
    )
    assert result.physician_pool == D("100.05")
    assert result.amount_paid == D("0.00")
    assert result.hospital_keeps == result.net_savings == D("200.10")
    assert result.cumulative_distributed == D("200.00")  # the cap is not consumed
    assert result.cap_headroom == D("800.00")
    assert result.withheld_by_cap == D("0.00")
    assert result.withheld_no_entitled == D("100.05")
    [flag] = [f for f in result.flags if f.code == "no_entitled_physicians"]
    assert flag.blocking
    assert notes(result, "4.edge.nobody-entitled")
    assert all(p.amount == 0 for p in result.physicians)


# --- Leavers and joiners --------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["pro_rata", "forfeit"])
def test_leaver_policy_applies_to_leavers_only_a_joiner_always_gets_pro_rata(policy):
    """Spec 4 edge case: "`leaver_policy` applies to physicians who leave voluntarily; a
    physician who joins during the year always gets a pro-rata share." """
    people = [
        physician("N1", last_name="Adams"),
        physician("N2", last_name="Chen", join_date=DAY(2025, 4, 1)),
        physician("N3", last_name="Diaz", leave_date=DAY(2025, 6, 30)),
    ]
    result = _saving_20010(
        participants=people, savings_terms=terms(reprice_baseline=False, leaver_policy=policy)
    )
    chen, diaz = result.physician("N2"), result.physician("N3")
    assert (chen.entitlement, chen.participation_days) == ("pro_rata_joiner", 275)
    assert chen.amount > 0
    if policy == "pro_rata":
        assert (diaz.entitlement, diaz.participation_days) == ("pro_rata_leaver", 181)
        assert diaz.amount > 0
    else:
        assert (diaz.entitlement, diaz.amount) == ("forfeited_leaver", D("0.00"))
    assert sum(p.amount for p in result.physicians) == result.amount_paid
    assert "Dr Chen: joined Apr 1, 2025, 275 of 365 days." in notes(
        result, "4.edge.leavers-and-joiners"
    )


# --- Leftover cents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("npi_of_9", "npi_of_10", "first"),
    [("1000000001", "1000000002", "9"), ("1000000009", "1000000001", "10")],
)
def test_leftover_cents_follow_last_name_first_name_then_npi_never_the_id(
    npi_of_9, npi_of_10, first
):
    """Spec 4 edge case: "The fixed order is last name, first name, then NPI (never a database
    id)." Two Dr Ann Smiths with ids 9 and 10 (as text "10" sorts before "9")."""
    people = [
        Participant(
            physician_id=pid,
            npi=npi,
            last_name="Smith",
            first_name="Ann",
            join_date=DAY(2024, 1, 1),
        )
        for pid, npi in (("9", npi_of_9), ("10", npi_of_10))
    ]
    frame = usage(cases("c", 1, npi=npi_of_9, items=(("X1", "1", "99.98"),)))
    result = compute(
        base=usage(cases("b", 1, npi=npi_of_9)),
        current=frame,
        participants=people,
    )
    assert result.amount_paid == D("0.01")  # (100 - 99.98) x 50%
    assert result.physician(first).amount == D("0.01")
    assert notes(result, "4.edge.leftover-cents") == [
        f"1 leftover cent(s) went one each to Dr Smith (NPI {result.physician(first).npi}),"
        " in order of last name, first name, then NPI."
    ]
