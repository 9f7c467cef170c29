"""The strict input helpers: every bad shape is an InputError naming the field, never a guess."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comanage.core.inputs import (
    InputError,
    parse_bool,
    parse_decimal,
    parse_int,
    parse_mapping,
    parse_money,
    refuse_nul,
)


@pytest.mark.parametrize(
    "value",
    [
        "1e400",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e30",
        1e308,
        float("nan"),
        float("inf"),
        "1\x00",
        "0x10",
        "1_000",
        "١٢",
        "1 000",
        "",
        "  ",
        [1],
        {"a": 1},
        True,
        False,
        None,
        "1e99999",
    ],
)
def test_it_refuses_non_finite_huge_and_malformed_decimals(value):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        parse_decimal(value, field="overrides.pool", max_digits=14, decimal_places=2)
    assert caught.value.field == "overrides.pool"
    assert caught.value.message_dict == {"overrides.pool": [caught.value.reason]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (" 7 ", Decimal("7")),
        ("1e3", Decimal("1000")),
        (12, Decimal(12)),
        (12.5, Decimal("12.5")),
        (Decimal("0.1"), Decimal("0.1")),
        ("-0", Decimal("0")),
        ("-0.00", Decimal("0.00")),
        ("0E+9", Decimal("0")),
        (".5", Decimal("0.5")),
    ],
)
def test_it_reads_plain_and_exponent_decimals(value, expected):  # type: ignore[no-untyped-def]
    parsed = parse_decimal(value, field="x", max_digits=14, decimal_places=2)
    assert parsed == expected
    assert not parsed.is_signed()  # -0 reads as 0: nothing shows "-0.00"


def test_money_is_refused_not_rounded_past_cents_and_not_negative():  # type: ignore[no-untyped-def]
    assert parse_money("10.25", field="price") == Decimal("10.25")
    with pytest.raises(InputError, match="decimal places"):
        parse_money("10.255", field="price")
    with pytest.raises(InputError, match="minimum"):
        parse_money("-0.01", field="price")
    assert parse_money("-3", field="adjustment", allow_negative=True) == Decimal(-3)


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_a_parsed_decimal_is_always_finite_and_bounded(value):  # type: ignore[no-untyped-def]
    try:
        parsed = parse_decimal(value, field="x", max_digits=14, decimal_places=4)
    except InputError:
        return
    assert parsed is not None and parsed.is_finite()
    assert abs(parsed) < Decimal(10) ** 10
    assert parsed.as_tuple().exponent >= -4  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        (1, True),
        (0, False),
    ],
)
def test_booleans_are_true_false_or_the_usual_form_values(value, expected):  # type: ignore[no-untyped-def]
    assert parse_bool(value, field="met") is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, None, [], {}, "tru", 1.0, "y\x00"])
def test_anything_else_is_not_a_boolean(value):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        parse_bool(value, field="key_indicators_met")
    assert caught.value.field == "key_indicators_met"


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3", 1.5, True, "", None, [1], "9" * 30])
def test_whole_numbers_are_strict(value):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError):
        parse_int(value, field="revoke")


def test_nul_is_refused_at_any_depth_naming_the_path():  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        refuse_nul({"prices": {"A": ["ok", "b\x00"]}}, field="overrides")
    assert caught.value.field == "overrides.prices.A[1]"
    with pytest.raises(InputError) as caught:
        refuse_nul({"prices": {"A\x00": "1"}}, field="overrides")
    assert caught.value.field == "overrides.prices"


def test_unknown_keys_are_refused_naming_them():  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="'bogus'") as caught:
        parse_mapping({"pool": "1", "bogus": 1}, field="overrides", allowed=["pool"])
    assert caught.value.field == "overrides"
    with pytest.raises(InputError, match="must be an object"):
        parse_mapping("x", field="overrides.weights")
