from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comanage.core.money import (
    FloatMoneyError,
    allocate_in_order,
    allocate_largest_remainder,
    format_money,
    monthly_instalments,
    round_money,
    to_decimal,
)

cents = st.integers(min_value=0, max_value=10**11).map(lambda c: Decimal(c) / 100)


def test_it_rounds_half_up_not_half_even():
    assert round_money(Decimal("55888.005")) == Decimal("55888.01")
    assert round_money(Decimal("0.125")) == Decimal("0.13")
    assert round_money(Decimal("-4080.005")) == Decimal("-4080.01")


def test_it_refuses_floats():
    with pytest.raises(FloatMoneyError):
        to_decimal(0.1)
    with pytest.raises(FloatMoneyError):
        round_money(1.5)


def test_monthly_instalments_of_example_c():
    parts = monthly_instalments(Decimal("400000.00"))
    assert parts[:11] == [Decimal("33333.33")] * 11
    assert parts[11] == Decimal("33333.37")


@given(annual=cents)
def test_twelve_instalments_always_sum_to_the_annual_fee(annual):
    parts = monthly_instalments(annual)
    assert len(parts) == 12
    assert sum(parts) == annual
    assert all(p >= 0 for p in parts)


def test_largest_remainder_of_example_c():
    weights = [Decimal("18.75"), Decimal("15"), Decimal("20"), Decimal("10")]
    parts = allocate_largest_remainder(Decimal("300000.00"), weights)
    assert parts == [
        Decimal("88235.29"),
        Decimal("70588.24"),
        Decimal("94117.65"),
        Decimal("47058.82"),
    ]


def test_per_capita_leftover_goes_in_the_fixed_order():
    parts = allocate_in_order(Decimal("55888.01"), [1, 1, 1])
    assert parts == [Decimal("18629.34"), Decimal("18629.34"), Decimal("18629.33")]
    reordered = allocate_in_order(Decimal("55888.01"), [1, 1, 1], order=[2, 1, 0])
    assert reordered == [Decimal("18629.33"), Decimal("18629.34"), Decimal("18629.34")]


@given(
    total=cents,
    weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_allocations_always_sum_to_the_total(total, weights):
    assert sum(allocate_largest_remainder(total, weights)) == total
    assert sum(allocate_in_order(total, weights)) == total


def test_negative_totals_allocate_symmetrically():
    assert sum(allocate_largest_remainder(Decimal("-10.00"), [1, 1, 1])) == Decimal("-10.00")


def test_format_money_is_us_style():
    assert format_money(Decimal("1234567.5")) == "$1,234,567.50"
    assert format_money(Decimal("-4080")) == "-$4,080.00"
