"""The engine's fast path (typed columns from the database) against its text path (CSV).

Both must give identical ``to_dict()`` results, to the last digit of every intermediate figure:
on spec example A (spec 6) and on random data (hypothesis), with and without a prior year, for
several base files, and for a projection's rows to date.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from savings.engine import (
    COST_SCALE_DIGITS,
    SavingsInputError,
    UsageColumns,
    opportunity_analysis,
    price_list_from_csv,
    savings_compute,
    usage_frame_from_csv,
)
from tests.savings.test_engine import (
    EXAMPLE_A,
    EXAMPLE_A_OPPORTUNITIES,
    YEAR_END,
    YEAR_START,
    compute,
    example_a_participants,
    physician,
    terms,
    usage,
)
from tests.savings.test_engine_properties import (
    ALL_PRICES,
    OPPORTUNITIES,
    PROPERTY_SETTINGS,
    case_lists,
    day_of_2025,
)

D = Decimal
_TRUE = {"true", "t", "yes", "y", "1"}


def columns(frame: pd.DataFrame, *, digits: int = 4, shuffle_codes: bool = True) -> UsageColumns:
    """What the database hands the engine, built independently of the engine's own parsing:
    Decimal -> exact integer x 10**digits (unit costs always at the engine's cost scale),
    dates -> ordinals, codes in arbitrary order."""
    rng = random.Random(len(frame))

    def encode(values: pd.Series) -> tuple[np.ndarray, list[str]]:
        distinct = list(dict.fromkeys(values))
        if shuffle_codes:
            rng.shuffle(distinct)
        index = {v: i for i, v in enumerate(distinct)}
        return np.asarray([index[v] for v in values], dtype=np.int64), distinct

    def scaled(values: pd.Series, places: int = digits) -> np.ndarray:
        return np.asarray([int(D(v).scaleb(places)) for v in values], dtype=np.int64)

    def flag(values: pd.Series) -> np.ndarray:
        return np.asarray([str(v).strip().lower() in _TRUE for v in values], dtype=bool)

    case_code, case_values = encode(frame["case_id"])
    type_code, type_values = encode(frame["case_type"])
    npi_code, npi_values = encode(frame["physician_npi"])
    item_code, item_values = encode(frame["item_code"])
    return UsageColumns(
        case_code=case_code,
        case_values=case_values,
        case_type_code=type_code,
        case_type_values=type_values,
        npi_code=npi_code,
        npi_values=npi_values,
        item_code=item_code,
        item_values=item_values,
        service_day=np.asarray(
            [dt.date.fromisoformat(v).toordinal() for v in frame["service_date"]], dtype=np.int64
        ),
        federal=flag(frame["federal_program"]),
        opted_out=flag(frame["opted_out"]),
        has_notice=np.asarray([bool(str(v).strip()) for v in frame["notice_date"]], dtype=bool),
        severity=scaled(frame["severity_weight"]),
        severity_digits=digits,
        quantity=scaled(frame["quantity"]),
        quantity_digits=digits,
        unit_cost=scaled(frame["unit_cost"], COST_SCALE_DIGITS),
    )


def _example_a(base, current):
    return savings_compute(
        terms=terms(
            physician_share_pct=D("50"),
            admin_fee_monthly=D("3000.00"),
            distribution_cap=D("10000000.00"),
        ),
        opportunities=EXAMPLE_A_OPPORTUNITIES,
        participants=example_a_participants(),
        year_start=YEAR_START,
        year_end=YEAR_END,
        base_usage=base,
        current_usage=current,
        current_prices=price_list_from_csv(str(EXAMPLE_A / "prices_2025.csv")),
        fee_months=12,
    )


def test_example_a_comes_out_the_same_through_typed_columns():
    base = usage_frame_from_csv(str(EXAMPLE_A / "usage_2024.csv"))
    current = usage_frame_from_csv(str(EXAMPLE_A / "usage_2025.csv"))
    text = _example_a(base, current)
    fast = _example_a(columns(base), columns(current))
    assert fast.to_dict() == text.to_dict()
    assert fast.checksum() == text.checksum()
    assert [o.capped_savings for o in fast.opportunities] == [
        D("91856.01"),
        D("60000.00"),
        D("-4080.00"),
    ]
    assert fast.gross_savings == D("147776.01")
    assert fast.physician_pool == D("55888.01")
    assert sorted(p.amount for p in fast.physicians if p.amount) == [
        D("18629.33"),
        D("18629.34"),
        D("18629.34"),
    ]


def test_the_scale_of_the_typed_columns_never_changes_a_figure():
    base = usage_frame_from_csv(str(EXAMPLE_A / "usage_2024.csv"))
    current = usage_frame_from_csv(str(EXAMPLE_A / "usage_2025.csv"))
    expected = _example_a(base, current).to_dict()
    assert _example_a(columns(base, digits=6), columns(current, digits=2)).to_dict() == expected


def test_the_design_analysis_is_the_same_through_typed_columns():
    base = usage_frame_from_csv(str(EXAMPLE_A / "usage_2024.csv"))
    assert (
        opportunity_analysis(usage=columns(base)).to_dict()
        == opportunity_analysis(usage=base).to_dict()
    )


@given(
    base_cases=case_lists(prefix="b"),
    prior_cases=case_lists(prefix="p", service_date=day_of_2025),
    current_cases=case_lists(prefix="c", service_date=day_of_2025),
    with_prior=st.booleans(),
    scope=st.sampled_from(["all_payors", "federal_only"]),
    reprice=st.booleans(),
)
@PROPERTY_SETTINGS
def test_typed_columns_and_text_give_identical_results_on_random_data(
    base_cases, prior_cases, current_cases, with_prior, scope, reprice
):
    base, prior, current = usage(base_cases), usage(prior_cases), usage(current_cases)
    people = [
        physician("N1"),
        physician("N2", termination_date=dt.date(2025, 6, 30)),
        physician("N3"),
    ]
    options = {
        "savings_terms": terms(volume_cap_scope=scope, reprice_baseline=reprice),
        "prices": ALL_PRICES,
        "opportunities": OPPORTUNITIES,
        "participants": people,
    }
    text = compute(
        base=base, current=current, **({"prior_usage": prior} if with_prior else {}), **options
    )
    fast = compute(
        base=columns(base),
        current=columns(current),
        **({"prior_usage": columns(prior)} if with_prior else {}),
        **options,
    )
    assert fast.to_dict() == text.to_dict()


@given(
    first=case_lists(prefix="a"),
    second=case_lists(prefix="a"),
    current_cases=case_lists(prefix="c", service_date=day_of_2025),
)
@PROPERTY_SETTINGS
def test_several_base_files_concatenate_like_frames(first, second, current_cases):
    """Two base files sharing case ids: one case each, as when the frames are concatenated;
    a shared case whose rows disagree is refused alike on both paths (spec 4 edge case "All
    rows of one case must agree on case type, physician, payer, federal flag, notice and
    opt-out")."""
    one, two = usage(first), usage(second)
    current = usage(current_cases)
    options = {
        "prices": ALL_PRICES,
        "opportunities": OPPORTUNITIES,
        "participants": [physician("N1"), physician("N2"), physician("N3")],
    }

    def outcome(run):
        try:
            return run().to_dict()
        except SavingsInputError as exc:
            return str(exc)

    text = outcome(
        lambda: compute(base=pd.concat([one, two], ignore_index=True), current=current, **options)
    )
    fast = outcome(
        lambda: compute(
            base=UsageColumns.concat([columns(one, digits=3), columns(two)]),
            current=columns(current),
            **options,
        )
    )
    assert fast == text


@given(
    current_cases=case_lists(prefix="c", service_date=day_of_2025),
    day=st.integers(min_value=0, max_value=364),
)
@PROPERTY_SETTINGS
def test_rows_to_date_select_like_the_text_filter(current_cases, day):
    frame = usage(current_cases)
    as_of = YEAR_START + dt.timedelta(days=day)
    options = {
        "prices": ALL_PRICES,
        "opportunities": OPPORTUNITIES,
        "participants": [physician("N1"), physician("N2"), physician("N3")],
    }
    base = usage(current_cases)  # any base year will do
    text = compute(base=base, current=frame[frame["service_date"] <= as_of.isoformat()], **options)
    fast = compute(base=columns(base), current=columns(frame).up_to(as_of), **options)
    assert fast.to_dict() == text.to_dict()


def test_an_empty_year_is_empty_on_both_paths():
    empty = usage([])
    base = usage_frame_from_csv(str(EXAMPLE_A / "usage_2024.csv"))
    text = _example_a(base, empty)
    fast = _example_a(columns(base), columns(empty))
    assert fast.to_dict() == text.to_dict()


@pytest.mark.parametrize("length", [0, 1])
def test_columns_of_different_lengths_are_refused(length):
    frame = usage_frame_from_csv(str(EXAMPLE_A / "usage_2025.csv"))
    good = columns(frame)
    bad = UsageColumns(**{**good.__dict__, "quantity": good.quantity[:length]})
    with pytest.raises(ValueError, match="differ in length"):
        _example_a(columns(usage_frame_from_csv(str(EXAMPLE_A / "usage_2024.csv"))), bad)
