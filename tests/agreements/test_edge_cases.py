"""Spec edge cases on the agreements side: fee months of a year that does not start on the
1st or is short, and the FMV fixed portion rounded half-up through the one rounding helper."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from agreements import fees, selectors, services
from agreements.models import FixedFeeMode, FMVOpinion
from tests.agreements.test_services import make_agreement

D = Decimal


@pytest.mark.django_db
def test_a_twelve_month_year_starting_on_the_15th_carries_twelve_fees(world):
    """Spec 4 edge case: "A programme year of twelve months carries twelve monthly fees,
    whatever day it starts on" (the fixed-fee schedule of a co-management year too)."""
    agreement = make_agreement(
        world, term_start=dt.date(2025, 1, 15), term_end=dt.date(2027, 1, 14)
    )
    with world.scope():
        services.terms_update(
            terms=agreement.terms.get(), data={"annual_fixed_fee": D("120000.00")}, user=None
        )
        year1 = agreement.programme_years.order_by("number").first()
        assert (year1.start, year1.end) == (dt.date(2025, 1, 15), dt.date(2026, 1, 14))
        schedule = selectors.fixed_fee_schedule(programme_year=year1)
    assert len(schedule) == 12
    assert [ln.instalment for ln in schedule] == [D("10000.00")] * 12
    assert schedule[0].month == dt.date(2025, 1, 1) and schedule[-1].month == dt.date(2025, 12, 1)


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (dt.date(2025, 1, 15), dt.date(2026, 1, 14), 12),
        (dt.date(2025, 2, 28), dt.date(2026, 2, 27), 12),
        (dt.date(2024, 2, 29), dt.date(2025, 2, 28), 12),
        (dt.date(2025, 1, 15), dt.date(2025, 6, 20), 6),
        (dt.date(2025, 1, 15), dt.date(2025, 1, 15), 1),
        (dt.date(2025, 1, 31), dt.date(2025, 2, 28), 1),
    ],
)
def test_fee_months_are_counted_from_the_start_day(start, end, count):
    """Spec 4 edge case: "A programme year of twelve months carries twelve monthly fees,
    whatever day it starts on; a shorter year carries one fee per started month." """
    assert fees.fee_month_count(start, end) == count
    lines = fees.fee_schedule(
        annual_fee=D("120000.00"),
        months=fees.fee_months(start, end),
        required_hours=D("0"),
        approved_hours={},
        policy="hold",
    )
    assert len(lines) == count
    assert sum(ln.amount_payable for ln in lines) == D("10000.00") * count


def test_the_fmv_fixed_portion_rounds_half_up():
    """Spec (money): "Rounding is ROUND_HALF_UP to cents"; 0.25 h x $100.10 = $25.025 is
    $25.03, never half-even's $25.02."""
    opinion = FMVOpinion(
        fixed_mode=FixedFeeMode.HOURLY, fixed_hours=D("0.25"), hourly_rate=D("100.10")
    )
    assert opinion.fixed_portion == D("25.03")


def test_the_fmv_maximum_check_uses_the_half_up_fixed_portion():
    """Spec 2: "Validations: fixed + maximum incentive ≤ FMV total maximum", with the fixed
    portion rounded half-up (25.03 + 0 exceeds a maximum of 25.02)."""
    opinion = FMVOpinion(
        fixed_mode=FixedFeeMode.HOURLY,
        fixed_hours=D("0.25"),
        hourly_rate=D("100.10"),
        total_max_annual=D("25.02"),
        max_incentive=D("0"),
        effective_start=dt.date(2025, 1, 1),
        effective_end=dt.date(2025, 12, 31),
    )
    with pytest.raises(ValidationError) as refused:
        services.fmv_opinion_check(opinion)
    assert "25.03" in str(refused.value)
